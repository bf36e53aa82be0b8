/* hello-c-libz: needs libz.so.1 (DT_NEEDED), which the go-libs image does not ship. */
#include <stdio.h>
#include <zlib.h>

int main(void) {
    printf("hello from C, zlib %s\n", zlibVersion());
    return 0;
}
