/* An empty translation unit: the dependency check in CMakeLists.txt links
 * each library into a shared object around it. */
typedef int depcheck_empty;
