//! Nothing at run time: the build script writes the runtime's wasm (see build.rs).
#![no_std]
