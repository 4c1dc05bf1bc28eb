use super::parse_size;

#[test]
fn sizes_with_units() {
    let check = |text: &str, expected: Result<usize, ()>| {
        assert_eq!(parse_size(text).map_err(|_| ()), expected, "{text:?}");
    };
    check("1048576", Ok(1 << 20));
    check("4MiB", Ok(4 << 20));
    check("4mib", Ok(4 << 20));
    check("2G", Ok(2_000_000_000));
    check("1.5GiB", Ok(3 << 29));
    check("512K", Ok(512_000));
    check("10 kb", Ok(10_000));
    check("12XB", Err(()));
    check("", Err(()));
    check("MiB", Err(()));
    check("0", Err(()));
    check("-5", Err(()));
}
