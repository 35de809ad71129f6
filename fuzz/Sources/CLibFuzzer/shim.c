// The declaration in include/CLibFuzzer.h is all this target provides; libFuzzer itself
// comes from the toolchain's compiler-rt when linking with -sanitize=fuzzer.
#include "CLibFuzzer.h"
