//! Go-template subset used by rootfs `.tmpl` files (SPEC §4).
