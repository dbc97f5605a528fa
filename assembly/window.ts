// The geometry of a sliding 2-D window (src/backend/backend.ts, Window2d),
// passed to the convolution and pooling kernels as one struct in linear
// memory: ten i32 in the order of WINDOW_FIELDS in src/backend/wasm/window.ts.

@unmanaged export class Window {
  H: i32;
  W: i32;
  kh: i32;
  kw: i32;
  sh: i32;
  sw: i32;
  ph: i32;
  pw: i32;
  OH: i32;
  OW: i32;
}
