//! Generates the ctest2 layout checks of `include/tzstore.h` against
//! `src/ffi/types.rs` (sizes, alignments, field offsets, constants).

fn main() {
    let mut cfg = ctest2::TestGenerator::new();
    cfg.header("tzstore.h")
        .include("../include")
        .type_name(|s, is_struct, _is_union| {
            if is_struct {
                format!("struct {s}")
            } else {
                s.to_string()
            }
        });
    cfg.generate("../src/ffi/types.rs", "all.rs");
}
