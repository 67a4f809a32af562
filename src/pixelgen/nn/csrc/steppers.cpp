// Fast sampling in C++: the body of each stepper at one pixel in one call, and whole rows
// of the raster (pixelgen/nn/native.py builds this file with recurrences.cpp;
// pixelgen/sampling/native_body.py builds these objects from a Python stepper, whose
// arithmetic they follow).
//
// A fast step at the MNIST paper sizes is ~150 tiny products and elementwise ops (a
// 16 x 32 by 32 x 16 product is 8k multiply-adds): per-operation dispatch, not arithmetic,
// was most of its time. Here a whole body (every block or layer) runs as plain loops over
// the tensors the Python stepper keeps, with no dispatch and no allocation but the output.
// The caches (convolution windows, row states) stay owned by the Python stepper, which
// updates them in place once per row; these classes hold handles to the same storage.
//
// From 8 images up every product runs in register tiles over pre-packed weights (tile): at
// h = 128 (CIFAR-10) they beat ATen's products, which repack the weight at each call, and
// at the MNIST sizes they match plain loops; below 8 images, plain loops (gemv_acc). A step
// computes only the colour groups it needs (Span). The values agree with the Python path
// to rounding, which is all the tests ask of a step.
// Only float or double CPU tensors (native_body.py checks that); the weights, caches and
// row states are contiguous as native_body.py and the steppers create them, and the
// raster checks its arguments.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

namespace {

using Tensors = std::vector<at::Tensor>;

// The colour groups one call computes at a pixel, g0..g1 of `colours`. Feature map q of n
// belongs to group q * colours / n (nn/masks.py channel_groups), so groups g0..g1 are the
// contiguous maps [lo(n), hi(n)). Under mask B a map of group g reads only the groups <= g
// of its input at the current pixel, so the step that draws colour c computes only group
// c of every layer (the groups before it were computed by the earlier colours' steps) and
// a pixel costs one pass of the body, not one per colour. One colour: every map.
struct Span {
  int64_t g0, g1, colours;
  int64_t lo(int64_t n) const { return (g0 * n + colours - 1) / colours; }
  int64_t hi(int64_t n) const { return ((g1 + 1) * n + colours - 1) / colours; }
};
constexpr Span kWhole{0, 0, 1};

// Which part of an (in, out) map a call computes: outputs [o0, o1) from inputs [0, k).
struct Cols {
  int64_t o0, o1, k;
};

// Products of the batch with a map's columns, in tiles: MB images by kPanel columns of
// the weight, the MB x kPanel sums in vector registers over the whole k. The weight is
// packed once per column range into panels of kPanel columns (k rows of kPanel values,
// contiguous) and the input is transposed to (k, B), so each step over k reads one panel
// row and MB adjacent inputs. At 16 images this ran about twice the rate of a BLAS call on
// the same product (whose packing of the weight, repeated at every call, was half its
// time). A build for a processor with 512-bit vectors (-march=native) uses them, in panels
// of 16 columns: the CIFAR-10 samplings ran 1.13-1.21x faster than with 256-bit panels of
// 8, the same values (each sum is still taken over k in order).
#ifdef __AVX512F__
template <typename T>
struct VecOf {
  typedef T type __attribute__((vector_size(64)));
};
constexpr int64_t kPanel = 16;
#else
template <typename T>
struct VecOf {
  typedef T type __attribute__((vector_size(32)));
};
constexpr int64_t kPanel = 8;
#endif

// y[m, 0:n] = base[m, 0:n] + sum_q xt[q, m] * panel[q, 0:n] for MB images m, n <= kPanel
// columns (base: y itself, or the bias where `bias` is given).
template <typename T, int MB>
inline void tile(const T* __restrict__ xt, int64_t batch, int64_t k, const T* __restrict__ panel,
                 T* __restrict__ y, int64_t ys, int64_t n, const T* bias) {
  using V = typename VecOf<T>::type;
  constexpr int L = sizeof(V) / sizeof(T), NV = kPanel / L;
  V acc[MB][NV] = {};
  for (int64_t q = 0; q < k; ++q) {
    V w[NV];
    for (int v = 0; v < NV; ++v) std::memcpy(&w[v], panel + q * kPanel + v * L, sizeof(V));
    const T* xq = xt + q * batch;
    for (int m = 0; m < MB; ++m)
      for (int v = 0; v < NV; ++v) acc[m][v] += xq[m] * w[v];
  }
  for (int m = 0; m < MB; ++m) {
    T out[kPanel];
    std::memcpy(out, acc[m], sizeof(out));
    T* ym = y + m * ys;
    for (int64_t c = 0; c < n; ++c) ym[c] = (bias ? bias[c] : ym[c]) + out[c];
  }
}

// y[0:o] += x[0:k] @ wt[0:k, 0:o] for one image (x every xs values, wt rows ld apart),
// eight weight rows per pass so that y is loaded and stored once per eight. Below 8 images
// a tile holds too few independent sums to hide the multiply-add latency, and at 4 images
// of the MNIST sizes these loops sampled in half the time of the tiles.
template <typename T>
inline void gemv_acc(const T* __restrict__ x, int64_t xs, int64_t k, const T* __restrict__ wt,
                     int64_t ld, int64_t o, T* __restrict__ y) {
  int64_t q = 0;
  for (; q + 8 <= k; q += 8) {
    T v[8];
    for (int r = 0; r < 8; ++r) v[r] = x[(q + r) * xs];
    const T* w = wt + q * ld;
    for (int64_t p = 0; p < o; ++p)
      y[p] += ((v[0] * w[p] + v[1] * w[ld + p]) + (v[2] * w[2 * ld + p] + v[3] * w[3 * ld + p])) +
              ((v[4] * w[4 * ld + p] + v[5] * w[5 * ld + p]) +
               (v[6] * w[6 * ld + p] + v[7] * w[7 * ld + p]));
  }
  for (; q < k; ++q) {
    const T v = x[q * xs];
    const T* w = wt + q * ld;
    for (int64_t p = 0; p < o; ++p) y[p] += v * w[p];
  }
}

// B rows of n values starting every `stride` values, as a tensor over the same memory.
template <typename T>
at::Tensor rows_view(const T* data, int64_t batch, int64_t n, int64_t stride) {
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  return at::from_blob(const_cast<T*>(data), {batch, n}, {stride, 1}, options);
}

// The LSTM cells [u0, u1) of B images, as nn/lstm.py's lstm_update: gates (B, 4h) laid out
// [o, f, i, g], c = σf ⊙ c_prev + σi ⊙ tanh g, h = σo ⊙ tanh c. Image b's c_prev, h and c
// start at b * stride. The sigmoids are ATen's vectorized kernel over the whole block (a
// scalar exp loop took most of a step), the tanhs as 2 σ(2x) - 1, as recurrences.cpp.
template <typename T>
void lstm_cells(T* gates, int64_t batch, int64_t h, int64_t u0, int64_t u1, const T* c_prev,
                T* h_out, T* c_out, int64_t stride, std::vector<T>& tmp) {
  const int64_t n = u1 - u0;
  if (n <= 0) return;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t q = 3 * h + u0; q < 3 * h + u1; ++q) gates[b * 4 * h + q] *= T(2);
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::from_blob(gates + u0, {batch, 4, n}, {4 * h, h, 1}, options).sigmoid_();
  tmp.resize(batch * n);
  for (int64_t b = 0; b < batch; ++b) {
    const T* g = gates + b * 4 * h;
    for (int64_t q = u0; q < u1; ++q) {
      const T tg = T(2) * g[3 * h + q] - T(1);
      const T c = g[h + q] * c_prev[b * stride + q] + g[2 * h + q] * tg;
      c_out[b * stride + q] = c;
      tmp[b * n + q - u0] = T(2) * c;
    }
  }
  rows_view(tmp.data(), batch, n, n).sigmoid_();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t q = u0; q < u1; ++q)
      h_out[b * stride + q] = gates[b * 4 * h + q] * (T(2) * tmp[b * n + q - u0] - T(1));
}


// An affine map with its weight transposed to (in, out), contiguous, and its bias.
struct Affine {
  at::Tensor wt, bias;
  // The weight's columns [o0, o1) in panels (see tile), made at their first use.
  mutable std::map<std::pair<int64_t, int64_t>, at::Tensor> panels;

  int64_t in() const { return wt.size(0); }
  int64_t out() const { return wt.size(1); }
  // A mask-B map's part for the groups of `s`: their outputs, from the inputs up to them.
  Cols groups(const Span& s) const { return {s.lo(out()), s.hi(out()), s.hi(in())}; }

  const at::Tensor& packed(int64_t o0, int64_t o1) const {
    auto it = panels.find({o0, o1});
    if (it != panels.end()) return it->second;
    const int64_t n = (o1 - o0 + kPanel - 1) / kPanel;
    at::Tensor p = at::zeros({n, in(), kPanel}, wt.options());  // the last one zero-padded
    for (int64_t i = 0; i < n; ++i) {
      const int64_t w = std::min(kPanel, o1 - o0 - i * kPanel);
      p[i].narrow(1, 0, w).copy_(wt.narrow(1, o0 + i * kPanel, w));
    }
    return panels.emplace(std::make_pair(o0, o1), p).first->second;
  }

  // y[:, cols] = [y +] bias + act(x) @ wt for `batch` rows (x every xs values, y every
  // ys); with `add` the bias is left out (the state-to-state maps have none).
  template <typename T>
  void apply(const T* x, int64_t xs, int64_t batch, T* y, int64_t ys, bool relu, bool add,
             std::vector<T>& tmp, const Cols& cols) const {
    transpose(x, xs, batch, cols.k, relu, tmp);
    product(tmp.data(), batch, y, ys, add, cols);
  }

  // The same from xt = act(x) transposed, (k, B): see transpose.
  template <typename T>
  void product(const T* xt, int64_t batch, T* y, int64_t ys, bool add, const Cols& cols) const {
    const int64_t k = cols.k, o = cols.o1 - cols.o0;
    if (o <= 0) return;
    if (batch < 8) {  // one image at a time (see gemv_acc)
      for (int64_t b = 0; b < batch; ++b) {
        T* yb = y + b * ys + cols.o0;
        if (!add) std::memcpy(yb, bias.data_ptr<T>() + cols.o0, sizeof(T) * o);
        gemv_acc(xt + b, batch, k, wt.data_ptr<T>() + cols.o0, out(), o, yb);
      }
      return;
    }
    const T* panel = packed(cols.o0, cols.o1).data_ptr<T>();
    const T* b0 = add ? nullptr : bias.data_ptr<T>() + cols.o0;
    for (int64_t c = 0; c < o; c += kPanel, panel += in() * kPanel) {
      const int64_t n = std::min(kPanel, o - c);
      T* yc = y + cols.o0 + c;
      const T* bc = b0 ? b0 + c : nullptr;
      int64_t m = 0;
      for (; m + 8 <= batch; m += 8) tile<T, 8>(xt + m, batch, k, panel, yc + m * ys, ys, n, bc);
      for (; m + 4 <= batch; m += 4) tile<T, 4>(xt + m, batch, k, panel, yc + m * ys, ys, n, bc);
      for (; m < batch; ++m) tile<T, 1>(xt + m, batch, k, panel, yc + m * ys, ys, n, bc);
    }
  }

  // xt (k, B) = act(x[:, 0:k]) transposed, the layout the tiles read.
  template <typename T>
  static void transpose(const T* x, int64_t xs, int64_t batch, int64_t k, bool relu,
                        std::vector<T>& xt) {
    xt.resize(k * batch);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t q = 0; q < k; ++q)
        xt[q * batch + b] = relu ? std::max(x[b * xs + q], T(0)) : x[b * xs + q];
  }
};

std::vector<Affine> affines(const Tensors& wts, const Tensors& biases) {
  TORCH_CHECK(wts.size() == biases.size(), "weights and biases differ in number");
  std::vector<Affine> out;
  for (size_t l = 0; l < wts.size(); ++l) out.push_back(Affine{wts[l], biases[l]});
  return out;
}

// The four gate blocks' columns of units [u0, u1) of a (k, 4h) map, applied in turn.
template <typename T>
void gate_maps(const Affine& map, const T* x, int64_t xs, int64_t batch, T* gates, bool add,
               std::vector<T>& tmp, int64_t u0, int64_t u1, int64_t k) {
  const int64_t h = map.out() / 4;
  Affine::transpose(x, xs, batch, k, false, tmp);
  for (int64_t g = 0; g < 4; ++g)
    map.product(static_cast<const T*>(tmp.data()), batch, gates, 4 * h, add,
                Cols{g * h + u0, g * h + u1, k});
}

// A masked k_h x k_w convolution read at one column of a WindowConv buffer
// (B, rows, W + 2 pad, I): its weight is (rows * kw * I, O) in the window's order, and the
// current (last) row reads only columns up to the centre (mask B masks the rest out).
struct Window {
  Affine map;
  at::Tensor buf;
  int64_t kw, pad;

  // Inputs [i0, i1) of every image at column j of the current row: (B, I), every xs values.
  template <typename T>
  void put(int64_t j, const T* x, int64_t xs, int64_t i0, int64_t i1) const {
    const int64_t batch = buf.size(0), rows = buf.size(1), width = buf.size(2), in = buf.size(3);
    T* dst = buf.data_ptr<T>() + ((rows - 1) * width + j + pad) * in;
    for (int64_t b = 0; b < batch; ++b)
      std::memcpy(dst + b * rows * width * in + i0, x + b * xs + i0, sizeof(T) * (i1 - i0));
  }

  // y[:, o0:o1] (B, O) = the convolution at column j, reading the first `centre` inputs
  // at the current pixel (under mask B the outputs' own and earlier groups); with `blocks`,
  // also the columns [o0, o1) + n * step for n < blocks (the gate blocks of an LSTM).
  template <typename T>
  void apply(int64_t j, T* y, std::vector<T>& tmp, int64_t o0, int64_t o1, int64_t centre,
             int64_t blocks = 1, int64_t step = 0) const {
    if (o1 <= o0) return;
    const int64_t batch = buf.size(0), rows = buf.size(1), width = buf.size(2), in = buf.size(3);
    const int64_t o = map.out(), span = kw * in;
    const T* base = buf.data_ptr<T>() + j * in;
    // What the current row reads: the columns left of the centre, and `centre` inputs
    // at it; the window's order puts those first in that row.
    const int64_t last = (std::min(kw, pad + 1) - 1) * in + centre;
    // Gathered for the products as they read it, (k, B): the window rows one after another.
    const int64_t k = (rows - 1) * span + last;
    tmp.resize(k * batch);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t r = 0; r < rows; ++r) {
        const T* src = base + (b * rows + r) * width * in;
        T* dst = tmp.data() + r * span * batch + b;
        for (int64_t q = 0, n = r == rows - 1 ? last : span; q < n; ++q) dst[q * batch] = src[q];
      }
    for (int64_t n = 0; n < blocks; ++n)
      map.product(static_cast<const T*>(tmp.data()), batch, y, o, false,
                  Cols{o0 + n * step, o1 + n * step, k});
  }
};

// A window buffer (B, rows, W + 2 pad, I) moved on to a new current row, as
// sampling/cache.py WindowConv.next_row: the oldest row dropped, the new one zero.
inline void next_window_row(const at::Tensor& buf) {
  AT_DISPATCH_FLOATING_TYPES(buf.scalar_type(), "next_window_row", [&] {
    const int64_t batch = buf.size(0), rows = buf.size(1), row = buf.size(2) * buf.size(3);
    scalar_t* data = buf.data_ptr<scalar_t>();
    for (int64_t b = 0; b < batch; ++b) {
      scalar_t* image = data + b * rows * row;
      std::memmove(image, image + row, sizeof(scalar_t) * (rows - 1) * row);
      std::fill(image + (rows - 1) * row, image + rows * row, scalar_t(0));
    }
  });
}

// A conditional model's term t at (i, j) (sampling/cache.py CondTerms: a view (B, H, W, w), a
// class's broadcast over H and W with zero strides), added to the columns [c0, c1) + n *
// step, n < blocks, of y (B rows every ys values).
template <typename T>
void add_cond_term(const at::Tensor& t, int64_t i, int64_t j, T* y, int64_t ys, int64_t batch,
                   int64_t c0, int64_t c1, int64_t blocks = 1, int64_t step = 0) {
  const T* here = t.data_ptr<T>() + i * t.stride(1) + j * t.stride(2);
  const int64_t sb = t.stride(0), sq = t.stride(3);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t n = 0; n < blocks; ++n)
      for (int64_t p = c0 + n * step; p < c1 + n * step; ++p)
        y[b * ys + p] += here[b * sb + p * sq];
}

// The gate of a Gated PixelCNN layer for units [u0, u1) of `rows` rows: a (rows, 2h) holds
// the pre-activations [f, g] and y (rows every ys values) gets tanh f * sigmoid g, tanh as
// 2 sigmoid(2 f) - 1 so that both halves take one vectorized sigmoid (a is overwritten).
template <typename T>
void gated(T* a, int64_t rows, int64_t h, int64_t u0, int64_t u1, T* y, int64_t ys) {
  const int64_t n = u1 - u0;
  if (n <= 0) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = u0; p < u1; ++p) a[r * 2 * h + p] *= T(2);
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::from_blob(a + u0, {rows, 2, n}, {2 * h, h, 1}, options).sigmoid_();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = u0; p < u1; ++p)
      y[r * ys + p] = (T(2) * a[r * 2 * h + p] - T(1)) * a[r * 2 * h + h + p];
}

// The residual and skip wiring of a PixelRNN body (models/base.py RecurrentPixelModel):
// layer l's output y (B, h) feeds the skip sum `out` and, but for the last layer, the next
// layer's input x_next = [x +] res(y) (else x_next = x). Only the feature maps of `s`.
struct Wiring {
  std::vector<Affine> res, skips;
  bool residual;

  // The skip sum's maps of `s` start again at each pixel: out (B, F).
  template <typename T>
  void start(T* out, int64_t batch, int64_t feat, const Span& s) const {
    for (int64_t b = 0; b < batch; ++b)
      std::fill(out + b * feat + s.lo(feat), out + b * feat + s.hi(feat), T(0));
  }

  // x, x_next and out are (B, F); y is (B, h), every ys values.
  template <typename T>
  void after(int64_t l, const T* y, int64_t ys, const T* x, T* x_next, T* out, int64_t batch,
             int64_t feat, const Span& s, std::vector<T>& tmp, std::vector<T>& tmp2) const {
    const int64_t f0 = s.lo(feat), f1 = s.hi(feat);
    const bool mapped = l < static_cast<int64_t>(res.size());
    // Both maps read y's groups up to s's: transposed once (tmp2) for the two products.
    const T* yt = nullptr;
    if (mapped || !skips.empty()) {
      const int64_t hid = (mapped ? res[l] : skips[l]).in();
      Affine::transpose(y, ys, batch, s.hi(hid), false, tmp2);
      yt = tmp2.data();
    }
    tmp.resize(batch * feat);
    if (!skips.empty()) {
      skips[l].product(yt, batch, tmp.data(), feat, false, skips[l].groups(s));
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t p = b * feat + f0; p < b * feat + f1; ++p) out[p] += tmp[p];
    }
    if (mapped) res[l].product(yt, batch, tmp.data(), feat, false, res[l].groups(s));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t p = b * feat + f0; p < b * feat + f1; ++p)
        x_next[p] = !mapped ? x[p] : residual ? x[p] + tmp[p] : tmp[p];
  }
};

// A stepper body at one pixel: (B, F) features of the input layer -> (B, F) for the head.
// The input of every layer is kept for the pixel (streams_, (L + 1, B, F); the last is the
// output of a body without skips), so a later colour's step reads the groups the earlier
// ones computed.
class Body {
 public:
  Body(int64_t layers, int64_t batch, int64_t feat, const at::TensorOptions& options,
       const Tensors& terms)
      : streams_(at::zeros({layers + 1, batch, feat}, options)), input_(streams_[0]),
        last_(streams_[layers]), terms_(terms) {
    TORCH_CHECK(terms.empty() || static_cast<int64_t>(terms.size()) == layers,
                "one condition term per layer, or none");
  }
  virtual ~Body() = default;

  // The body's input at the current pixel, where the caller writes the groups it runs.
  const at::Tensor& input() const { return input_; }

  // The groups of `s` at (i, j); returns the output (B, F), whose maps of `s` are new.
  virtual at::Tensor run(int64_t i, int64_t j, const Span& s) const = 0;

  // Every map at (i, j) from f (B, F), as the Python stepper's body_step.
  at::Tensor step(const at::Tensor& f, int64_t i, int64_t j) const {
    input_.copy_(f);
    return run(i, j, kWhole).clone();
  }

 protected:
  // Layer l's input stream, (B, F). By pointer: indexing the tensor is an ATen call, and
  // some thousands of them per row were a third of a step at 4 images of 28 x 28.
  template <typename T>
  T* stream(int64_t l) const {
    return streams_.data_ptr<T>() + l * streams_.size(1) * streams_.size(2);
  }

  // Layer l's condition term at (i, j), where the model is conditional (add_cond_term).
  template <typename T>
  void add_term(int64_t l, int64_t i, int64_t j, T* y, int64_t ys, int64_t batch, int64_t c0,
                int64_t c1, int64_t blocks = 1, int64_t step = 0) const {
    if (!terms_.empty()) add_cond_term(terms_[l], i, j, y, ys, batch, c0, c1, blocks, step);
  }

  at::Tensor streams_, input_, last_;
  Tensors terms_;  // one per layer, or none (an unconditional model)
};

// PixelCNN (sampling/pixelcnn.py): per block, relu -> 1x1 reduce -> relu into the window,
// the k x k mask-B convolution, relu -> 1x1 expand, added to the stream (or replacing it).
class PixelCNNBody : public Body {
 public:
  PixelCNNBody(const Tensors& reduce_wt, const Tensors& reduce_b, const Tensors& conv_wt,
               const Tensors& conv_b, const Tensors& bufs, int64_t kw, int64_t pad,
               const Tensors& expand_wt, const Tensors& expand_b, bool residual,
               const Tensors& terms)
      : Body(static_cast<int64_t>(bufs.size()), bufs[0].size(0), reduce_wt[0].size(0),
             reduce_wt[0].options(), terms),
        reduce_(affines(reduce_wt, reduce_b)), expand_(affines(expand_wt, expand_b)),
        residual_(residual) {
    const auto conv = affines(conv_wt, conv_b);
    for (size_t l = 0; l < conv.size(); ++l) conv_.push_back(Window{conv[l], bufs[l], kw, pad});
    acts_ = at::zeros({static_cast<int64_t>(conv.size()), bufs[0].size(0), conv[0].out()},
                      reduce_wt[0].options());
  }

  at::Tensor run(int64_t i, int64_t j, const Span& s) const override {
    AT_DISPATCH_FLOATING_TYPES(streams_.scalar_type(), "pixelcnn_step",
                               [&] { run_as<scalar_t>(i, j, s); });
    return last_;
  }

  // Row i's start (sampling/pixelcnn.py body_row): every window moves on a row.
  void start_row(int64_t i) const {
    if (i > 0)
      for (const Window& w : conv_) next_window_row(w.buf);
  }

 private:
  template <typename T>
  void run_as(int64_t i, int64_t j, const Span& s) const {
    const int64_t batch = streams_.size(1), feat = streams_.size(2);
    const int64_t f0 = s.lo(feat), f1 = s.hi(feat);
    std::vector<T> r, y(batch * feat), tmp;
    for (size_t l = 0; l < conv_.size(); ++l) {
      const Affine &red = reduce_[l], &exp = expand_[l];
      const Window& conv = conv_[l];
      const T* f = stream<T>(l);
      T* next = stream<T>(l + 1);
      T* a = acts_.data_ptr<T>() + l * batch * conv.map.out();  // (B, hc): see acts_
      const int64_t hr = red.out(), hc = conv.map.out();
      r.resize(batch * hr);
      red.apply(f, feat, batch, r.data(), hr, true, false, tmp, red.groups(s));
      for (T& v : r) v = std::max(v, T(0));
      conv.put(j, r.data(), hr, s.lo(hr), s.hi(hr));
      conv.apply(j, a, tmp, s.lo(hc), s.hi(hc), s.hi(hr));
      add_term(static_cast<int64_t>(l), i, j, a, hc, batch, s.lo(hc), s.hi(hc));
      exp.apply(static_cast<const T*>(a), hc, batch, y.data(), feat, true, false, tmp,
                exp.groups(s));
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t p = b * feat + f0; p < b * feat + f1; ++p)
          next[p] = residual_ ? f[p] + y[p] : y[p];
    }
  }

  std::vector<Affine> reduce_, expand_;
  std::vector<Window> conv_;
  at::Tensor acts_;  // (L, B, hc): each block's convolution at the current pixel
  bool residual_;
};

// Row LSTM (sampling/row_lstm.py): layer l at column j reads its 1 x k input window and
// the row's state-to-state gates, and the cell state of the row above at column j.
// gates_ss (B, W, 4h), h and c (B, W, h), c_prev (B, W, h): the Python stepper's tensors.
class RowLSTMBody : public Body {
 public:
  RowLSTMBody(const Tensors& in_wt, const Tensors& in_b, const Tensors& bufs, int64_t pad,
              const Tensors& gates_ss, const Tensors& h, const Tensors& c, const Tensors& c_prev,
              const Tensors& res_wt, const Tensors& res_b, const Tensors& skip_wt,
              const Tensors& skip_b, bool residual, const Tensors& terms, const Tensors& taps_t)
      : Body(static_cast<int64_t>(bufs.size()), bufs[0].size(0), bufs[0].size(3),
             in_wt[0].options(), terms),
        gates_ss_(gates_ss), h_(h), c_(c), c_prev_(c_prev), taps_t_(taps_t),
        wiring_{affines(res_wt, res_b), affines(skip_wt, skip_b), residual},
        out_(at::zeros_like(streams_[0])) {
    const auto in = affines(in_wt, in_b);
    for (size_t l = 0; l < in.size(); ++l) in_.push_back(Window{in[l], bufs[l], pad + 1, pad});
  }

  at::Tensor run(int64_t i, int64_t j, const Span& s) const override {
    AT_DISPATCH_FLOATING_TYPES(streams_.scalar_type(), "row_lstm_step",
                               [&] { run_as<scalar_t>(i, j, s); });
    return wiring_.skips.empty() ? last_ : out_;
  }

  // What row i needs before its first pixel (sampling/row_lstm.py body_row), every layer:
  // the state-to-state gates K_ss * h_{i-1} of the whole row, as one product of the row's
  // im2col (B * W, k * h) with the taps (k * h, 4h); the row's cell states become the
  // previous ones; the row states and (below row 0) the input windows start at zero.
  void start_row(int64_t i) const {
    AT_DISPATCH_FLOATING_TYPES(streams_.scalar_type(), "row_lstm_row",
                               [&] { start_row_as<scalar_t>(i); });
  }

 private:
  template <typename T>
  void run_as(int64_t i, int64_t j, const Span& s) const {
    const int64_t batch = streams_.size(1), feat = streams_.size(2), width = h_[0].size(1);
    const int64_t hid = h_[0].size(2), u0 = s.lo(hid), u1 = s.hi(hid);
    std::vector<T> gates(batch * 4 * hid), tmp, tmp2;
    T* out = out_.data_ptr<T>();
    wiring_.start(out, batch, feat, s);
    for (size_t l = 0; l < in_.size(); ++l) {
      const T* x = stream<T>(l);
      const Window& w = in_[l];
      w.put(j, x, feat, s.lo(feat), s.hi(feat));
      w.apply(j, gates.data(), tmp, u0, u1, s.hi(feat), 4, hid);
      for (int64_t b = 0; b < batch; ++b) {
        T* gb = gates.data() + b * 4 * hid;
        const T* ss = gates_ss_[l].data_ptr<T>() + (b * width + j) * 4 * hid;
        for (int64_t g = 0; g < 4; ++g)
          for (int64_t p = g * hid + u0; p < g * hid + u1; ++p) gb[p] += ss[p];
      }
      add_term(static_cast<int64_t>(l), i, j, gates.data(), 4 * hid, batch, u0, u1, 4, hid);
      const int64_t at = j * hid;  // image b's at b * width * hid
      lstm_cells(gates.data(), batch, hid, u0, u1, c_prev_[l].data_ptr<T>() + at,
                 h_[l].data_ptr<T>() + at, c_[l].data_ptr<T>() + at, width * hid, tmp2);
      const T* y = h_[l].data_ptr<T>() + at;
      wiring_.after(static_cast<int64_t>(l), y, width * hid, x, stream<T>(l + 1), out, batch,
                    feat, s, tmp, tmp2);
    }
  }

  template <typename T>
  void start_row_as(int64_t i) const {
    std::vector<T> col;
    for (size_t l = 0; l < in_.size(); ++l) {
      const at::Tensor& h = h_[l];  // (B, W, h), row i - 1's states (zeros above row 0)
      const int64_t batch = h.size(0), width = h.size(1), hid = h.size(2);
      const int64_t k = taps_t_[l].size(0) / hid, p = k / 2, m = batch * width;
      col.assign(m * k * hid, T(0));
      const T* hs = h.data_ptr<T>();
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t w = 0; w < width; ++w)
          for (int64_t t = 0; t < k; ++t) {  // tap t reads column w + t - p
            const int64_t src = w + t - p;
            if (src < 0 || src >= width) continue;
            std::memcpy(col.data() + ((b * width + w) * k + t) * hid,
                        hs + (b * width + src) * hid, sizeof(T) * hid);
          }
      at::Tensor ss = gates_ss_[l].view({m, -1});
      at::mm_out(ss, rows_view(static_cast<const T*>(col.data()), m, k * hid, k * hid),
                 taps_t_[l]);
      c_prev_[l].copy_(c_[l]);
      h_[l].zero_();
      c_[l].zero_();
      if (i > 0) next_window_row(in_[l].buf);
    }
  }

  std::vector<Window> in_;
  Tensors gates_ss_, h_, c_, c_prev_, taps_t_;
  Wiring wiring_;
  at::Tensor out_;  // (B, F): the skip sum at the current pixel
};

// Diagonal BiLSTM (sampling/diagonal_bilstm.py), its left-to-right half: layer l at (i, j)
// reads the 1x1 input-to-state of its input, its states at (i - 1, j) and (i, j - 1), and
// adds the right-to-left state of row i - 1. inputs (n, B, W, F), h and c (n, B, W + 1, h),
// h_above and right_above (n, B, W, h): the Python stepper's tensors.
class DiagonalBody : public Body {
 public:
  DiagonalBody(const Tensors& in_wt, const Tensors& in_b, const Tensors& ss_wt,
               at::Tensor inputs, at::Tensor h, at::Tensor c, at::Tensor h_above,
               at::Tensor right_above, const Tensors& res_wt, const Tensors& res_b,
               const Tensors& skip_wt, const Tensors& skip_b, bool residual,
               const Tensors& terms)
      : Body(inputs.size(0), inputs.size(1), inputs.size(3), inputs.options(), terms),
        in_(affines(in_wt, in_b)), inputs_(inputs), h_(h), c_(c), h_above_(h_above),
        right_above_(right_above),
        wiring_{affines(res_wt, res_b), affines(skip_wt, skip_b), residual},
        out_(at::zeros_like(streams_[0])) {
    // The (2h, 4h) state-to-state weight as two maps: rows [0, h) read the state above,
    // rows [h, 2h) the state to the left.
    for (const at::Tensor& w : ss_wt) {
      const int64_t hid = w.size(0) / 2;
      const at::Tensor none = at::zeros({w.size(1)}, w.options());
      above_.push_back(Affine{w.narrow(0, 0, hid).contiguous(), none});
      left_.push_back(Affine{w.narrow(0, hid, hid).contiguous(), none});
    }
  }

  at::Tensor run(int64_t i, int64_t j, const Span& s) const override {
    AT_DISPATCH_FLOATING_TYPES(streams_.scalar_type(), "diagonal_step",
                               [&] { run_as<scalar_t>(i, j, s); });
    return wiring_.skips.empty() ? last_ : out_;
  }

 private:
  template <typename T>
  void run_as(int64_t i, int64_t j, const Span& s) const {
    const int64_t n = inputs_.size(0), batch = inputs_.size(1), width = inputs_.size(2);
    const int64_t feat = inputs_.size(3), hid = h_.size(3), u0 = s.lo(hid), u1 = s.hi(hid);
    const int64_t f0 = s.lo(feat), f1 = s.hi(feat);
    std::vector<T> gates(batch * 4 * hid), y(batch * hid), tmp, tmp2;
    T* out = out_.data_ptr<T>();
    wiring_.start(out, batch, feat, s);
    for (int64_t l = 0; l < n; ++l) {
      const T* x = stream<T>(l);
      const int64_t layer = l * batch;  // the first (layer, image) row of layer l
      T* inputs = inputs_.data_ptr<T>() + (layer * width + j) * feat;
      for (int64_t b = 0; b < batch; ++b)
        std::memcpy(inputs + b * width * feat + f0, x + b * feat + f0, sizeof(T) * (f1 - f0));
      T* h = h_.data_ptr<T>() + layer * (width + 1) * hid;
      T* c = c_.data_ptr<T>() + layer * (width + 1) * hid;
      const int64_t hs = (width + 1) * hid;  // image to image in h and c
      gate_maps(in_[l], x, feat, batch, gates.data(), false, tmp, u0, u1, f1);
      gate_maps(above_[l], static_cast<const T*>(h_above_.data_ptr<T>() + (layer * width + j) * hid),
                width * hid, batch, gates.data(), true, tmp, u0, u1, hid);
      gate_maps(left_[l], static_cast<const T*>(h + j * hid), hs, batch, gates.data(), true, tmp,
                u0, u1, hid);
      add_term(l, i, j, gates.data(), 4 * hid, batch, u0, u1, 4, hid);
      lstm_cells(gates.data(), batch, hid, u0, u1, static_cast<const T*>(c + j * hid),
                 h + (j + 1) * hid, c + (j + 1) * hid, hs, tmp2);
      // The layer's output, h + the right-to-left state above, for every group up to s's
      // (the residual and skip maps read those).
      const T* right = right_above_.data_ptr<T>() + (layer * width + j) * hid;
      for (int64_t b = 0; b < batch; ++b) {
        const T* hb = h + b * hs + (j + 1) * hid;
        for (int64_t p = 0; p < u1; ++p) y[b * hid + p] = hb[p] + right[b * width * hid + p];
      }
      wiring_.after(l, static_cast<const T*>(y.data()), hid, x, stream<T>(l + 1), out, batch,
                    feat, s, tmp, tmp2);
    }
  }

  std::vector<Affine> in_, above_, left_;
  at::Tensor inputs_, h_, c_, h_above_, right_above_;
  Wiring wiring_;
  at::Tensor out_;  // (B, F): the skip sum at the current pixel
};


// Gated PixelCNN (sampling/gated_pixelcnn.py), its horizontal stack: layer l at column j
// reads its 1 x k mask-B window and the row's link from the vertical stack above
// (links (B, W, 2h), which the Python stepper computes once per row), and gates the two
// halves [f, g] of the 2h pre-activation: y = tanh f * sigmoid g. Each half carries the
// colour groups of h maps, as an LSTM's gate blocks do.
class GatedBody : public Body {
 public:
  GatedBody(const Tensors& in_wt, const Tensors& in_b, const Tensors& bufs, int64_t pad,
            const Tensors& links, const Tensors& res_wt, const Tensors& res_b,
            const Tensors& skip_wt, const Tensors& skip_b, bool residual, const Tensors& terms)
      : Body(static_cast<int64_t>(bufs.size()), bufs[0].size(0), bufs[0].size(3),
             in_wt[0].options(), terms),
        links_(links), wiring_{affines(res_wt, res_b), affines(skip_wt, skip_b), residual},
        out_(at::zeros_like(streams_[0])) {
    const auto in = affines(in_wt, in_b);
    for (size_t l = 0; l < in.size(); ++l) in_.push_back(Window{in[l], bufs[l], pad + 1, pad});
    ys_ = at::zeros({static_cast<int64_t>(in.size()), bufs[0].size(0), in[0].out() / 2},
                    in_wt[0].options());
  }

  at::Tensor run(int64_t i, int64_t j, const Span& s) const override {
    AT_DISPATCH_FLOATING_TYPES(streams_.scalar_type(), "gated_step",
                               [&] { run_as<scalar_t>(i, j, s); });
    return wiring_.skips.empty() ? last_ : out_;
  }

  // Row i's start (sampling/gated_pixelcnn.py body_row): every window moves on a row.
  void start_row(int64_t i) const {
    if (i > 0)
      for (const Window& w : in_) next_window_row(w.buf);
  }

 private:
  template <typename T>
  void run_as(int64_t i, int64_t j, const Span& s) const {
    const int64_t batch = streams_.size(1), feat = streams_.size(2), width = links_[0].size(1);
    const int64_t hid = ys_.size(2), u0 = s.lo(hid), u1 = s.hi(hid);
    std::vector<T> a(batch * 2 * hid), tmp, tmp2;
    T* out = out_.data_ptr<T>();
    wiring_.start(out, batch, feat, s);
    for (size_t l = 0; l < in_.size(); ++l) {
      const T* x = stream<T>(l);
      const Window& w = in_[l];
      w.put(j, x, feat, s.lo(feat), s.hi(feat));
      w.apply(j, a.data(), tmp, u0, u1, s.hi(feat), 2, hid);
      T* y = ys_.data_ptr<T>() + static_cast<int64_t>(l) * batch * hid;  // (B, h): see ys_
      for (int64_t b = 0; b < batch; ++b) {
        T* ab = a.data() + b * 2 * hid;
        const T* link = links_[l].data_ptr<T>() + (b * width + j) * 2 * hid;
        for (int64_t p = u0; p < u1; ++p) {
          ab[p] += link[p];
          ab[hid + p] += link[hid + p];
        }
      }
      add_term(static_cast<int64_t>(l), i, j, a.data(), 2 * hid, batch, u0, u1, 2, hid);
      gated(a.data(), batch, hid, u0, u1, y, hid);
      wiring_.after(static_cast<int64_t>(l), static_cast<const T*>(y), hid, x,
                    stream<T>(l + 1), out, batch, feat, s, tmp, tmp2);
    }
  }

  std::vector<Window> in_;
  Tensors links_;
  Wiring wiring_;
  at::Tensor out_;  // (B, F): the skip sum at the current pixel
  at::Tensor ys_;   // (L, B, h): each layer's gated output at the current pixel
};


// The Gated PixelCNN's vertical stack for a finished row (sampling/gated_pixelcnn.py
// start_row): its input convolution over the last rows of the scaled image, then per layer
// the (p + 1) x n convolution over the last rows of its input, the condition's vertical
// term, the 1x1 link into the links the horizontal stack reads on the next row (written in
// place: the Python stepper's link_rows, which GatedBody holds too), and the gate that feeds
// the next layer. Every convolution keeps the last `rows` rows of its input, channels last
// and zero-padded at the sides: (B, rows, W + 2 pad, I). All B * W positions of a row go
// through one product per map, where the Python path dispatched ~8 operations per layer.
// Those products are row-sized (B * W rows), so they are ATen's (BLAS): at the CIFAR-10
// sizes the tiles, transposing a 512 x 768 window matrix per layer, were 1.3x slower.
class VerticalStack {
 public:
  VerticalStack(const Tensors& conv_wt, const Tensors& conv_b, const std::vector<int64_t>& rows,
                const std::vector<int64_t>& kws, const Tensors& link_wt, const Tensors& link_b,
                const Tensors& links, const Tensors& terms)
      : conv_(affines(conv_wt, conv_b)), kw_(kws), link_(affines(link_wt, link_b)),
        links_(links), terms_(terms) {
    TORCH_CHECK(conv_.size() == links.size() + 1 && rows.size() == conv_.size() &&
                    kws.size() == conv_.size(), "the input convolution and one per layer");
    TORCH_CHECK(terms.empty() || terms.size() == links.size(), "one term per layer, or none");
    const int64_t batch = links[0].size(0), width = links[0].size(1);
    for (size_t l = 0; l < conv_.size(); ++l) {
      const int64_t in = conv_[l].in() / (rows[l] * kws[l]);
      bufs_.push_back(at::zeros({batch, rows[l], width + 2 * (kws[l] / 2), in}, conv_wt[l].options()));
    }
  }

  // row (B, W, C): the scaled image's finished row i_prev; the links for row i_prev + 1.
  void push(const at::Tensor& row, int64_t i_prev) const {
    TORCH_CHECK(row.is_contiguous() && row.scalar_type() == bufs_[0].scalar_type(), "row");
    AT_DISPATCH_FLOATING_TYPES(row.scalar_type(), "vertical_stack",
                               [&] { push_as<scalar_t>(row, i_prev); });
  }

 private:
  template <typename T>
  void push_as(const at::Tensor& row, int64_t i_prev) const {
    const int64_t batch = links_[0].size(0), width = links_[0].size(1);
    const int64_t m = batch * width;  // every position of the row, image by image
    std::vector<T> v(row.data_ptr<T>(), row.data_ptr<T>() + row.numel()), pre, col;
    for (size_t l = 0; l < conv_.size(); ++l) {
      convolve(l, v.data(), col, pre);  // pre (B * W, O)
      if (l == 0) {
        v.swap(pre);  // the input convolution's output feeds layer 0 as it is
        continue;
      }
      const int64_t two_h = conv_[l].out(), hid = two_h / 2, k = l - 1;
      if (!terms_.empty())  // column w: its B rows every W * 2h values
        for (int64_t w = 0; w < width; ++w)
          add_cond_term(terms_[k], i_prev, w, pre.data() + w * two_h, width * two_h, batch, 0,
                        two_h);
      affine_rows(link_[k], static_cast<const T*>(pre.data()), m, links_[k].data_ptr<T>());
      v.resize(m * hid);
      gated(pre.data(), m, hid, 0, hid, v.data(), hid);
    }
  }

  // Map l over its window after the row x (B * W, I) joins it: pre (B * W, O).
  template <typename T>
  void convolve(size_t l, const T* x, std::vector<T>& col, std::vector<T>& pre) const {
    const at::Tensor& buf = bufs_[l];
    const int64_t batch = buf.size(0), rows = buf.size(1), bw = buf.size(2), in = buf.size(3);
    const int64_t kw = kw_[l], pad = kw / 2, width = bw - 2 * pad, span = kw * in;
    T* data = buf.data_ptr<T>();
    next_window_row(buf);  // the oldest row dropped; the new one, at the bottom:
    for (int64_t b = 0; b < batch; ++b)
      std::memcpy(data + ((b * rows + rows - 1) * bw + pad) * in, x + b * width * in,
                  sizeof(T) * width * in);
    const int64_t k = rows * span;  // the window in (rows, kw, I) order, as the weight
    col.resize(batch * width * k);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t w = 0; w < width; ++w)
        for (int64_t r = 0; r < rows; ++r)
          std::memcpy(col.data() + (b * width + w) * k + r * span,
                      data + ((b * rows + r) * bw + w) * in, sizeof(T) * span);
    pre.resize(batch * width * conv_[l].out());
    affine_rows(conv_[l], static_cast<const T*>(col.data()), batch * width, pre.data());
  }

  // y (m, out) = bias + x (m, in) @ wt, one BLAS call.
  template <typename T>
  static void affine_rows(const Affine& map, const T* x, int64_t m, T* y) {
    at::Tensor out = rows_view(static_cast<const T*>(y), m, map.out(), map.out());
    at::addmm_out(out, map.bias, rows_view(x, m, map.in(), map.in()), map.wt);
  }

  std::vector<Affine> conv_;
  std::vector<int64_t> kw_;
  std::vector<Affine> link_;
  Tensors links_, terms_, bufs_;
};


// The Diagonal BiLSTM's right-to-left half over a finished row (sampling/diagonal_bilstm.py
// _right_scan), every layer: from column W - 1 down to 0, a layer's gates are its input
// gates at j plus the state-to-state product of [its state above at j, its state right of
// j], then the LSTM cell; zero state right of the last column. gates_in (n, B, W, 4h) and
// above (n, B, W, h), contiguous; returns the states (n, B, W, h). One call per row, where
// the Python loop dispatched ~8 operations per column.
class RightScan {
 public:
  // ss_t: each layer's state-to-state weight as (in, out) = (2h, 4h), rows [above, right].
  explicit RightScan(const Tensors& ss_t) {
    for (const at::Tensor& w : ss_t) ss_.push_back(Affine{w, at::zeros({w.size(1)}, w.options())});
  }

  at::Tensor run(const at::Tensor& gates_in, const at::Tensor& above) const {
    TORCH_CHECK(gates_in.is_contiguous() && above.is_contiguous(), "contiguous inputs");
    TORCH_CHECK(above.size(0) == static_cast<int64_t>(ss_.size()), "one weight per layer");
    at::Tensor out = at::empty_like(above);
    AT_DISPATCH_FLOATING_TYPES(above.scalar_type(), "right_scan",
                               [&] { run_as<scalar_t>(gates_in, above, out); });
    return out;
  }

 private:
  template <typename T>
  void run_as(const at::Tensor& gates_in, const at::Tensor& above, at::Tensor& out) const {
    const int64_t n = above.size(0), batch = above.size(1), width = above.size(2);
    const int64_t hid = above.size(3);
    std::vector<T> prev(batch * 2 * hid), gates(batch * 4 * hid), h(batch * hid),
        c(batch * hid), tmp, tmp2;
    for (int64_t l = 0; l < n; ++l) {
      std::fill(h.begin(), h.end(), T(0));
      std::fill(c.begin(), c.end(), T(0));
      for (int64_t j = width - 1; j >= 0; --j) {
        const int64_t pos = l * batch * width + j;  // image b's: pos + b * width
        for (int64_t b = 0; b < batch; ++b) {
          std::memcpy(prev.data() + b * 2 * hid, above.data_ptr<T>() + (pos + b * width) * hid,
                      sizeof(T) * hid);
          std::memcpy(prev.data() + b * 2 * hid + hid, h.data() + b * hid, sizeof(T) * hid);
          std::memcpy(gates.data() + b * 4 * hid,
                      gates_in.data_ptr<T>() + (pos + b * width) * 4 * hid, sizeof(T) * 4 * hid);
        }
        ss_[l].apply(static_cast<const T*>(prev.data()), 2 * hid, batch, gates.data(), 4 * hid,
                     false, true, tmp, Cols{0, 4 * hid, 2 * hid});
        lstm_cells(gates.data(), batch, hid, 0, hid, static_cast<const T*>(c.data()), h.data(),
                   c.data(), hid, tmp2);
        for (int64_t b = 0; b < batch; ++b)
          std::memcpy(out.data_ptr<T>() + (pos + b * width) * hid, h.data() + b * hid,
                      sizeof(T) * hid);
      }
    }
  }

  std::vector<Affine> ss_;
};


// One row of raster-order generation (sampling/driver.py's _raster, for a stepper with a
// native body): per pixel and colour, the 7x7 mask-A input layer on the scaled image, the
// body, the output head for that colour, and the draw by inverse CDF in double
// (sampling/draw.py), writing each drawn value into x unless it is known. The Python
// stepper's start_row has run for the row (the body's windows and row states are ready);
// the input window moves on here, as it reads the image this call writes.
// Each step computes the colour groups not yet computed at the pixel, up to its own (see
// Span): its own group when every colour is stepped, all of them at a pixel whose only
// step is the last colour's (a known pixel, whose maps later pixels still read).
class Raster {
 public:
  Raster(at::Tensor in_wt, at::Tensor in_b, at::Tensor buf, int64_t kw, int64_t pad,
         int64_t levels, at::Tensor hidden_wt, at::Tensor hidden_b, const Tensors& out_wt,
         const Tensors& out_b, const Body* body)
      : input_{Affine{in_wt, in_b}, buf, kw, pad}, levels_(levels),
        hidden_{hidden_wt, hidden_b}, out_(affines(out_wt, out_b)), body_(body) {}

  // x (B, C, H, W) int64, u (B, C, H, W) double, known (B, C, H, W) bool; calls[j][c]:
  // whether (j, c) is stepped. Returns the logits of each step, (W, C, B, L), where `keep`
  // asks for them (a logits hook), else an empty tensor.
  at::Tensor row(at::Tensor& x, const at::Tensor& u, const at::Tensor& known, int64_t i,
                 double temperature, const std::vector<std::vector<bool>>& calls,
                 bool keep) const {
    TORCH_CHECK(x.is_contiguous() && x.scalar_type() == at::kLong, "x: contiguous int64");
    TORCH_CHECK(u.is_contiguous() && u.scalar_type() == at::kDouble, "u: contiguous double");
    TORCH_CHECK(known.is_contiguous() && known.scalar_type() == at::kBool, "known: contiguous");
    TORCH_CHECK(u.sizes() == x.sizes() && known.sizes() == x.sizes(), "x, u, known: one shape");
    const at::Tensor& w = hidden_.wt;
    // Without a hook one step's logits at a time: (1, 1, B, L), written over at each step.
    const int64_t steps = keep ? x.size(3) * x.size(1) : 1;
    at::Tensor logits = at::zeros({steps, x.size(0), levels_}, w.options());
    AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "raster_row", [&] {
      run<scalar_t>(x, u, known, i, temperature, calls, logits, keep);
    });
    return keep ? logits.view({x.size(3), x.size(1), x.size(0), levels_}) : at::Tensor();
  }

 private:
  template <typename T>
  void run(at::Tensor& x, const at::Tensor& u, const at::Tensor& known, int64_t i,
           double temperature, const std::vector<std::vector<bool>>& calls,
           at::Tensor& logits, bool keep) const {
    const int64_t batch = x.size(0), colours = x.size(1), height = x.size(2), width = x.size(3);
    const int64_t plane = height * width, image = colours * plane;
    int64_t* xs = x.data_ptr<int64_t>();
    const double* us = u.data_ptr<double>();
    const bool* ks = known.data_ptr<bool>();
    const at::Tensor& buf = input_.buf;
    const int64_t rows = buf.size(1), bw = buf.size(2);
    const T scale = T(2.0 / static_cast<double>(levels_ - 1));
    const int64_t feat = input_.map.out(), hid = hidden_.out();
    T* f = body_->input().data_ptr<T>();  // (B, F)
    std::vector<T> hbuf(batch * hid), tmp;  // the head's hidden maps at the current pixel
    std::vector<double> cdf(levels_);
    if (i > 0) {  // row i - 1 is final: the whole of it into the window, which moves on
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t jj = 0; jj < width; ++jj) {
          T* dst = buf.data_ptr<T>() + ((b * rows + rows - 1) * bw + jj + input_.pad) * colours;
          for (int64_t q = 0; q < colours; ++q)
            dst[q] = T(xs[b * image + q * plane + (i - 1) * width + jj]) * scale - T(1);
        }
      next_window_row(buf);
    }
    for (int64_t j = 0; j < width; ++j) {
      int64_t next = 0;  // the first colour group not yet computed at (i, j)
      for (int64_t c = 0; c < colours; ++c) {
        if (!calls[j][c]) continue;
        const Span s{next, c, colours};
        next = c + 1;
        // The current row's columns j - pad .. j, as the input layer reads them.
        for (int64_t b = 0; b < batch; ++b)
          for (int64_t jj = std::max<int64_t>(0, j - input_.pad); jj <= j; ++jj) {
            T* dst = buf.data_ptr<T>() + ((b * rows + rows - 1) * bw + jj + input_.pad) * colours;
            for (int64_t q = 0; q < colours; ++q)
              dst[q] = T(xs[b * image + q * plane + i * width + jj]) * scale - T(1);
          }
        input_.apply(j, f, tmp, s.lo(feat), s.hi(feat), colours);
        const at::Tensor g = body_->run(i, j, s);  // (B, F)
        hidden_.apply(g.data_ptr<T>(), feat, batch, hbuf.data(), hid, true, false, tmp,
                      hidden_.groups(s));
        T* out = logits.data_ptr<T>() + (keep ? (j * colours + c) * batch * levels_ : 0);
        out_[c].apply(static_cast<const T*>(hbuf.data()), hid, batch, out, levels_, true, false,
                      tmp, Cols{0, levels_, s.hi(hid)});
        for (int64_t b = 0; b < batch; ++b) {
          const int64_t at = b * image + c * plane + i * width + j;
          if (ks[at]) continue;
          xs[at] = draw(out + b * levels_, us[at], temperature, cdf);
        }
      }
    }
  }

  // The value v with cdf[v - 1] <= u < cdf[v] of softmax(logits / temperature), in double:
  // draw.py's inverse_cdf for one image, in its order (probabilities, then their running
  // sum), so the two agree to rounding.
  template <typename T>
  int64_t draw(const T* z, double u, double temperature, std::vector<double>& p) const {
    double top = -INFINITY;
    for (int64_t v = 0; v < levels_; ++v)
      top = std::max(top, static_cast<double>(z[v]) / temperature);
    double total = 0;
    for (int64_t v = 0; v < levels_; ++v) {
      p[v] = std::exp(static_cast<double>(z[v]) / temperature - top);
      total += p[v];
    }
    double cdf = 0;
    int64_t count = 0;
    for (int64_t v = 0; v < levels_; ++v) {
      cdf += p[v] / total;
      count += cdf <= u;
    }
    return std::min(count, levels_ - 1);
  }

  Window input_;
  int64_t levels_;
  Affine hidden_;
  std::vector<Affine> out_;
  const Body* body_;
};

}  // namespace

void add_steppers(pybind11::module_& m) {
  namespace py = pybind11;
  py::class_<Body>(m, "Body").def("step", &Body::step);
  py::class_<PixelCNNBody, Body>(m, "PixelCNNBody")
      .def(py::init<const Tensors&, const Tensors&, const Tensors&, const Tensors&,
                    const Tensors&, int64_t, int64_t, const Tensors&, const Tensors&, bool,
                    const Tensors&>())
      .def("start_row", &PixelCNNBody::start_row);
  py::class_<RowLSTMBody, Body>(m, "RowLSTMBody")
      .def(py::init<const Tensors&, const Tensors&, const Tensors&, int64_t, const Tensors&,
                    const Tensors&, const Tensors&, const Tensors&, const Tensors&,
                    const Tensors&, const Tensors&, const Tensors&, bool, const Tensors&,
                    const Tensors&>())
      .def("start_row", &RowLSTMBody::start_row);
  py::class_<DiagonalBody, Body>(m, "DiagonalBody")
      .def(py::init<const Tensors&, const Tensors&, const Tensors&, at::Tensor, at::Tensor,
                    at::Tensor, at::Tensor, at::Tensor, const Tensors&, const Tensors&,
                    const Tensors&, const Tensors&, bool, const Tensors&>());
  py::class_<GatedBody, Body>(m, "GatedBody")
      .def(py::init<const Tensors&, const Tensors&, const Tensors&, int64_t, const Tensors&,
                    const Tensors&, const Tensors&, const Tensors&, const Tensors&, bool,
                    const Tensors&>())
      .def("start_row", &GatedBody::start_row);
  py::class_<VerticalStack>(m, "VerticalStack")
      .def(py::init<const Tensors&, const Tensors&, const std::vector<int64_t>&,
                    const std::vector<int64_t>&, const Tensors&, const Tensors&,
                    const Tensors&, const Tensors&>())
      .def("push", &VerticalStack::push);
  py::class_<RightScan>(m, "RightScan")
      .def(py::init<const Tensors&>())
      .def("run", &RightScan::run);
  // The raster keeps its body alive (argument 11, the body; 1 is the raster itself).
  py::class_<Raster>(m, "Raster")
      .def(py::init<at::Tensor, at::Tensor, at::Tensor, int64_t, int64_t, int64_t, at::Tensor,
                    at::Tensor, const Tensors&, const Tensors&, const Body*>(),
           py::keep_alive<1, 12>())
      .def("row", &Raster::row);
}
