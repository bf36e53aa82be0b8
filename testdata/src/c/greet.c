/* libgreet.so.1: a tiny shared library found through RPATH/RUNPATH $ORIGIN/../lib. */
#include <stdio.h>

void greet(const char *who) {
    printf("hello, %s (from libgreet)\n", who);
}
