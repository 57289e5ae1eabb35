#include "version.h"

/* MS_VERSION is defined for this file alone (the top CMakeLists.txt), so a
 * new version recompiles one file. */
#ifndef MS_VERSION
#error "MS_VERSION is not defined: build through CMake"
#endif

const char ms_version[] = MS_VERSION;
