/* replaced by the real lbd main in this session */
int main(void) { return 1; }
