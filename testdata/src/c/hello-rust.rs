// A Rust program: rustc links with lld by default (Rust 1.90+ on x86_64 Linux), which
// writes `.shstrtab` before a `.strtab` larger than the inspector's 64 KiB window in front of
// the section table. Built with line-table DWARF so section names matter (FS/GO facts: debug).
fn main() {
    let who = std::env::args().nth(1).unwrap_or_else(|| "world".to_string());
    println!("hello, {who}");
}
