/* A fake, deliberately old "libc.so.6": a real gcc-built shared object with soname libc.so.6
 * whose version definitions stop at GLIBC_2.28 (see fakelibc.map). Loading a binary that needs
 * GLIBC_2.34 against it fails with "version `GLIBC_2.34' not found". Built with -nostdlib, so
 * it depends on nothing. The bodies never run in the fixtures. */
int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
                      void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
                      void *stack_end) {
    (void)init; (void)fini; (void)rtld_fini; (void)stack_end;
    return main(argc, argv, 0);
}

int puts(const char *s) { (void)s; return 0; }

int printf(const char *fmt, ...) { (void)fmt; return 0; }
