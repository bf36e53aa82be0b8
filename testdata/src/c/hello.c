/* hello-c-glibc: a plain gcc-built dynamic C program. Linked against Debian 12's glibc 2.36 it
 * needs __libc_start_main@GLIBC_2.34 (glibc >= 2.34 moved it to a new symbol version), which
 * the fake old libc in fakelibc/ does not define. */
#include <stdio.h>

int main(void) {
    puts("hello from C (glibc)");
    return 0;
}
