/* replaced by the real lbctl in this session */
int main(void) { return 1; }
