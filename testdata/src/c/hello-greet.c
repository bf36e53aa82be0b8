/* hello-c-rpath / hello-c-runpath: need libgreet.so.1, found via $ORIGIN/../lib. */
void greet(const char *who);

int main(void) {
    greet("rpath");
    return 0;
}
