//! Convert a raw image to qcow2: qcow2_convert RAW OUT
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (raw, out) = (
        args.next().ok_or("usage: qcow2_convert RAW OUT")?,
        args.next().ok_or("usage: qcow2_convert RAW OUT")?,
    );
    let stats = basalt_qcow2::convert(raw.as_ref(), out.as_ref())?;
    println!("{stats:?}");
    Ok(())
}
