//! Project automation (`cargo xtask ...`): fetch-weights, dist, bench (work in progress).
fn main() -> anyhow::Result<()> {
    anyhow::bail!("no xtask commands yet")
}
