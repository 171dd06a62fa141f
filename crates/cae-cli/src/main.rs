//! `cae-cli`: train and use contractive autoencoders (work in progress).
fn main() {
    eprintln!("cae-cli: no commands yet");
    std::process::exit(2);
}
