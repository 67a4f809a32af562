// The whole forward and backward scans of the two recurrent layers in one C++ call each
// (pixelgen/nn/native.py builds and loads this file; row_lstm.py and diagonal_lstm.py hold
// the Python scans it replaces, and the comments there explain the layouts).
//
// At the MNIST paper sizes (h = 16) a step of either recurrence is a product of a few
// MFLOP and some tens of thousands of elementwise values: the time of the Python scans
// went to per-step overhead (the interpreter, dispatch of ~20 small ops, temporaries).
// Here each step is one or two ATen products (addmm / baddbmm / mm / bmm with out=, so
// no allocation, and FlopCounterMode still sees them), two ATen sigmoids in place (the
// tanhs too, as 2 σ(2x) - 1: see activate; ATen's vectorized kernels beat a scalar
// std::exp loop several times), and the rest of the LSTM cell, forward and backward, as
// hand-fused loops.
//
// Only float and double on the CPU, contiguous inputs: native.py checks that and runs
// the Python scans otherwise (bfloat16 under autocast, CUDA, tracing).

// Per-operator headers and pybind's tensor casters only: compiling <torch/extension.h>
// (the whole C++ frontend) took three times as long, for nothing used here.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/baddbmm.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/utils/pybind.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace {

// Elementwise loops are split across threads only above this many values per chunk: at
// h = 16 a step holds ~7k values per gate, for which a thread hand-off costs more.
constexpr int64_t kGrain = 32768;

// A stack of map rows of `len` values each: row (d, j) (direction d, map j) starts at
// data + d * sd + j * sj. Gate q of map j of an activation block is row (d, q * n + j).
template <typename T>
struct Rows {
  T* data;
  int64_t sd, sj;
  T* row(int64_t d, int64_t j) const { return data + d * sd + j * sj; }
};

template <typename T>
Rows<T> rows_of(T* data, int64_t sd, int64_t sj) {
  return Rows<T>{data, sd, sj};
}

// Runs fn(d, j) for the D * n map rows, in parallel chunks when they are large.
template <typename F>
void for_rows(int64_t D, int64_t n, int64_t len, const F& fn) {
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(len, 1));
  at::parallel_for(0, D * n, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) fn(r / n, r % n);
  });
}

// Forward, after activate(): turns the g block from σ(2 g) into tanh g = 2 σ(2 g) - 1,
// then c = σf ⊙ c_prev + σi ⊙ tanh g (c_prev.data == nullptr: a zero state), and writes
// 2 c into tc, for the sigmoid that cell_output turns into tanh c.
template <typename T>
void cell_state(Rows<T> act, Rows<const T> c_prev, Rows<T> c, Rows<T> tc, int64_t D, int64_t n,
                int64_t len) {
  for_rows(D, n, len, [&](int64_t d, int64_t j) {
    const T* f = act.row(d, n + j);
    const T* i = act.row(d, 2 * n + j);
    T* g = act.row(d, 3 * n + j);
    const T* cp = c_prev.data == nullptr ? nullptr : c_prev.row(d, j);
    T* out = c.row(d, j);
    T* twice = tc.row(d, j);
    for (int64_t q = 0; q < len; ++q) {
      const T tg = T(2) * g[q] - T(1);
      g[q] = tg;
      const T cell = cp == nullptr ? i[q] * tg : f[q] * cp[q] + i[q] * tg;
      out[q] = cell;
      twice[q] = T(2) * cell;
    }
  });
}

// Forward, after tc = σ(2 c) in place: tc := tanh c = 2 σ(2 c) - 1 and h = σo ⊙ tanh c.
template <typename T>
void cell_output(Rows<const T> act, Rows<T> tc, Rows<T> h, int64_t D, int64_t n, int64_t len) {
  for_rows(D, n, len, [&](int64_t d, int64_t j) {
    const T* o = act.row(d, j);
    T* t = tc.row(d, j);
    T* out = h.row(d, j);
    for (int64_t q = 0; q < len; ++q) {
      const T th = T(2) * t[q] - T(1);
      t[q] = th;
      out[q] = o[q] * th;
    }
  });
}

// The gradient of one LSTM step (lstm.py's cell_backward, fused into one pass): dh is the
// gradient of h; dc holds the gradient reaching c from later steps on entry and that of
// c_prev on exit; da receives the gradients of the four pre-activations.
template <typename T>
void cell_backward(Rows<const T> dh, Rows<T> dc, Rows<const T> act, Rows<const T> tc,
                   Rows<const T> c_prev, Rows<T> da, int64_t D, int64_t n, int64_t len) {
  for_rows(D, n, len, [&](int64_t d, int64_t j) {
    const T* o = act.row(d, j);
    const T* f = act.row(d, n + j);
    const T* i = act.row(d, 2 * n + j);
    const T* g = act.row(d, 3 * n + j);
    const T* t = tc.row(d, j);
    const T* gh = dh.row(d, j);
    const T* cp = c_prev.data == nullptr ? nullptr : c_prev.row(d, j);
    T* gc = dc.row(d, j);
    T* d_o = da.row(d, j);
    T* d_f = da.row(d, n + j);
    T* d_i = da.row(d, 2 * n + j);
    T* d_g = da.row(d, 3 * n + j);
    for (int64_t q = 0; q < len; ++q) {
      const T total = gc[q] + gh[q] * o[q] * (T(1) - t[q] * t[q]);  // ∂/∂c, all paths
      d_o[q] = gh[q] * t[q] * (o[q] - o[q] * o[q]);  // σ' = σ (1 - σ)
      d_f[q] = cp == nullptr ? T(0) : total * cp[q] * (f[q] - f[q] * f[q]);
      d_i[q] = total * g[q] * (i[q] - i[q] * i[q]);
      d_g[q] = total * i[q] * (T(1) - g[q] * g[q]);
      gc[q] = total * f[q];
    }
  });
}

// The input gates of one step into its activation block, the g block doubled:
// dst row (d, r) := src row (d, r), times 2 for r >= 3n. With the g rows of the state
// weights doubled as well (doubled_g), the step's products then leave 2 g in the g block
// (doubling is exact), ready for activate(). One pass instead of the products' own copy
// of their input and a separate scaling call.
template <typename T>
void load_gates(Rows<const T> src, Rows<T> dst, int64_t D, int64_t n, int64_t len) {
  for_rows(D, 4 * n, len, [&](int64_t d, int64_t r) {
    const T* from = src.row(d, r);
    T* to = dst.row(d, r);
    if (r < 3 * n) {
      std::memcpy(to, from, sizeof(T) * len);
    } else {
      for (int64_t q = 0; q < len; ++q) to[q] = T(2) * from[q];
    }
  });
}

// A copy of state-to-state weights (..., 4n, K) with the g rows doubled (see load_gates).
at::Tensor doubled_g(const at::Tensor& w, int64_t n) {
  auto out = w.clone(at::MemoryFormat::Contiguous);
  out.narrow(out.dim() - 2, 3 * n, n).mul_(2);
  return out;
}

// The gate activations, in place, as one sigmoid over all four blocks of `act`
// (..., 4n, L) holding [o, f, i, 2 g]: σ(o), σ(f), σ(i) and σ(2 g), which cell_state
// turns into tanh g = 2 σ(2 g) - 1. ATen's tanh measured 4-5 times slower per value than
// its sigmoid here (65 against 12 µs for 7k floats); the identity is exact up to rounding
// (1e-16 in double, checked against the Python scans to 1e-10).
void activate(const at::Tensor& act) { act.sigmoid_(); }

// ---------------------------------------------------------------- Row LSTM (row_lstm.py)

// col (k*n, B*W) := the k shifted copies of the previous row's states h (n, B*W), zero
// beyond the image's left and right edges: col[t, j, b, w] = h[j, b, w + t - k/2].
template <typename T>
void im2col(const T* h, T* col, int64_t n, int64_t m, int64_t width, int64_t k) {
  const int64_t p = k / 2, images = m / width;
  at::parallel_for(0, k * n, std::max<int64_t>(1, kGrain / m), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t shift = r / n - p, j = r % n;
      for (int64_t b = 0; b < images; ++b) {
        const T* src = h + j * m + b * width;
        T* dst = col + r * m + b * width;
        for (int64_t w = 0; w < width; ++w) {
          const int64_t x = w + shift;
          dst[w] = (x >= 0 && x < width) ? src[x] : T(0);
        }
      }
    }
  });
}

// dh (n, B*W) := d_next (n, B*W) + the col2im of d_col (k*n, B*W): tap t of column w read
// column w + t - k/2 of the row above, so that column collects from each tap that read it.
template <typename T>
void col2im_add(const T* d_col, const T* d_next, T* dh, int64_t n, int64_t m, int64_t width,
                int64_t k) {
  const int64_t p = k / 2, images = m / width;
  at::parallel_for(0, n, std::max<int64_t>(1, kGrain / (k * m)), [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      std::memcpy(dh + j * m, d_next + j * m, sizeof(T) * m);
      for (int64_t t = 0; t < k; ++t) {
        const int64_t shift = t - p;  // dh[x] += d_col[t][x - shift]
        const int64_t lo = std::max<int64_t>(0, shift), hi = std::min(width, width + shift);
        for (int64_t b = 0; b < images; ++b) {
          const T* src = d_col + (t * n + j) * m + b * width - shift;
          T* dst = dh + j * m + b * width;
          for (int64_t x = lo; x < hi; ++x) dst[x] += src[x];
        }
      }
    }
  });
}

// gx (H, 4n, B*W) input gates, taps (4n, k*n): K_ss as one matrix (row_lstm._taps).
// Returns [out (H, n, B*W)] and with save also [act (H, 4n, B*W), c, tc (H, n, B*W)];
// without it, two rows of buffers alternate.
std::vector<at::Tensor> row_forward(const at::Tensor& gx, const at::Tensor& taps,
                                    int64_t width, bool save) {
  TORCH_CHECK(gx.is_contiguous() && gx.dim() == 3, "row_forward: gx (H, 4n, M) contiguous");
  const int64_t height = gx.size(0), four_n = gx.size(1), m = gx.size(2);
  const int64_t n = four_n / 4, k = taps.size(1) / n, rows = save ? height : 2;
  auto out = at::empty({height, n, m}, gx.options());
  auto act = at::empty({rows, four_n, m}, gx.options());
  auto c = at::empty({rows, n, m}, gx.options());
  auto tc = at::empty({rows, n, m}, gx.options());
  auto col = at::empty({k * n, m}, gx.options());
  const auto taps2 = doubled_g(taps, n);
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "row_forward", [&] {
    using T = scalar_t;
    for (int64_t i = 0; i < height; ++i) {
      const int64_t t = save ? i : i % 2, prev = save ? i - 1 : (i + 1) % 2;
      auto a = act[t];
      load_gates(rows_of<const T>(gx.data_ptr<T>() + i * four_n * m, 0, m),
                 rows_of(a.data_ptr<T>(), 0, m), 1, n, m);
      if (i > 0) {  // the state above row 0 is zero
        im2col(out.data_ptr<T>() + (i - 1) * n * m, col.data_ptr<T>(), n, m, width, k);
        at::addmm_out(a, a, taps2, col);  // the state convolution, added in place
      }
      activate(a);
      const T* cp = i == 0 ? nullptr : c.data_ptr<T>() + prev * n * m;
      auto tc_t = tc[t];
      auto act_rows = rows_of(a.data_ptr<T>(), 0, m);
      auto tc_rows = rows_of(tc_t.data_ptr<T>(), 0, m);
      cell_state(act_rows, rows_of(cp, 0, m), rows_of(c[t].data_ptr<T>(), 0, m), tc_rows, 1, n,
                 m);
      tc_t.sigmoid_();  // σ(2 c)
      cell_output(rows_of<const T>(a.data_ptr<T>(), 0, m), tc_rows,
                  rows_of(out.data_ptr<T>() + i * n * m, 0, m), 1, n, m);
    }
  });
  if (save) return {out, act, c, tc};
  return {out};
}

// The rows in reverse: d_out (H, n, B*W), taps_t (k*n, 4n), and the saved act, c, tc.
// Returns d_gx (H, 4n, B*W), the pre-activation gradients (row_lstm.py derives the
// gradient of K_ss from them).
at::Tensor row_backward(const at::Tensor& d_out, const at::Tensor& taps_t, const at::Tensor& act,
                        const at::Tensor& c, const at::Tensor& tc, int64_t width) {
  TORCH_CHECK(d_out.is_contiguous() && act.is_contiguous() && c.is_contiguous() &&
                  tc.is_contiguous(),
              "row_backward: contiguous tensors");
  const int64_t height = c.size(0), n = c.size(1), m = c.size(2), k = taps_t.size(0) / n;
  auto d_gx = at::empty_like(act);
  auto dc = at::zeros({n, m}, act.options());
  auto dh = d_out[height - 1].clone();
  auto d_col = at::empty({k * n, m}, act.options());
  AT_DISPATCH_FLOATING_TYPES(act.scalar_type(), "row_backward", [&] {
    using T = scalar_t;
    for (int64_t i = height - 1; i >= 0; --i) {
      const T* cp = i == 0 ? nullptr : c.data_ptr<T>() + (i - 1) * n * m;
      cell_backward(rows_of<const T>(dh.data_ptr<T>(), 0, m), rows_of(dc.data_ptr<T>(), 0, m),
                    rows_of<const T>(act.data_ptr<T>() + i * 4 * n * m, 0, m),
                    rows_of<const T>(tc.data_ptr<T>() + i * n * m, 0, m), rows_of(cp, 0, m),
                    rows_of(d_gx.data_ptr<T>() + i * 4 * n * m, 0, m), 1, n, m);
      if (i == 0) break;
      at::mm_out(d_col, taps_t, d_gx[i]);  // (k*n, B*W): the gradient of the im2col
      col2im_add(d_col.data_ptr<T>(), d_out.data_ptr<T>() + (i - 1) * n * m, dh.data_ptr<T>(),
                 n, m, width, k);
    }
  });
  return d_gx;
}

// ---------------------------------------------- Diagonal BiLSTM (diagonal_lstm.py's _Plan)
//
// Both directions advance together; step s (a skewed column) covers size[s] rows from
// lo[s]. States and cells live in padded buffers (2, n, padded * B) where step s owns
// (base[s] + 1) * B .. + size[s] * B, with a zero row either side. The saved activations
// are laid out per step, contiguously: step s's (2, 4n, size[s] * B) block of act starts
// at 2 * 4n * off[s] * B (tc likewise with n maps), so every step works on one dense block.

struct Plan {
  std::vector<int64_t> lo, size, off, base;
  int64_t b, padded;
};

// gx (2, 4n, HW*B) packed input gates; w_above, w_left (2, 4n, n): the two columns of
// K_ss. Returns [states (2, n, padded*B)], and with save also [act, tc (flat, per-step
// blocks), c (2, n, padded*B)].
std::vector<at::Tensor> diagonal_forward(const at::Tensor& gx, const at::Tensor& w_above,
                                         const at::Tensor& w_left, std::vector<int64_t> lo,
                                         std::vector<int64_t> size, std::vector<int64_t> off,
                                         std::vector<int64_t> base, int64_t b, int64_t padded,
                                         bool save) {
  TORCH_CHECK(gx.dim() == 3 && gx.size(0) == 2 && gx.is_contiguous(),
              "diagonal_forward: gx (2, 4n, HW*B) contiguous");
  const int64_t four_n = gx.size(1), n = four_n / 4, hwb = gx.size(2);
  const int64_t steps = static_cast<int64_t>(size.size());
  const int64_t widest = *std::max_element(size.begin(), size.end()) * b;
  const int64_t span = save ? hwb : widest;
  const int64_t pb = padded * b;  // row stride of the padded buffers
  auto states = at::zeros({2, n, pb}, gx.options());
  auto c = at::zeros({2, n, pb}, gx.options());
  auto act = at::empty({2 * four_n * span}, gx.options());
  auto tc = at::empty({2 * n * span}, gx.options());
  const auto above2 = doubled_g(w_above, n), left2 = doubled_g(w_left, n);
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "diagonal_forward", [&] {
    using T = scalar_t;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t len = size[s] * b, start = save ? off[s] * b : 0;
      auto a = act.narrow(0, 2 * four_n * start, 2 * four_n * len).view({2, four_n, len});
      auto t = tc.narrow(0, 2 * n * start, 2 * n * len).view({2, n, len});
      const int64_t inner = (base[s] + 1) * b;
      int64_t left = 0;
      load_gates(rows_of<const T>(gx.data_ptr<T>() + off[s] * b, four_n * hwb, hwb),
                 rows_of(a.data_ptr<T>(), four_n * len, len), 2, n, len);
      if (s > 0) {  // nothing before the first column
        // Rows i - 1 and i of column s - 1: two overlapping windows of its padded slot,
        // read in place (its pad rows hold zeros).
        const int64_t above = (base[s - 1] + lo[s] - lo[s - 1]) * b;
        left = above + b;
        at::baddbmm_out(a, a, above2, states.narrow(2, above, len));
        at::baddbmm_out(a, a, left2, states.narrow(2, left, len));
      }
      activate(a);
      const T* cp = s == 0 ? nullptr : c.data_ptr<T>() + left;
      auto tc_rows = rows_of(t.data_ptr<T>(), n * len, len);
      cell_state(rows_of(a.data_ptr<T>(), four_n * len, len), rows_of(cp, n * pb, pb),
                 rows_of(c.data_ptr<T>() + inner, n * pb, pb), tc_rows, 2, n, len);
      t.sigmoid_();  // σ(2 c)
      cell_output(rows_of<const T>(a.data_ptr<T>(), four_n * len, len), tc_rows,
                  rows_of(states.data_ptr<T>() + inner, n * pb, pb), 2, n, len);
    }
  });
  if (save) return {states, act, tc, c};
  return {states};
}

// The columns in reverse: d_states (2, n, padded*B), w_t (2, 2n, 4n) = K_ss transposed
// ([above; left] rows), and the saved act, tc, c. Returns d_gx (2, 4n, HW*B), packed
// (diagonal_lstm.py derives the gradient of K_ss from it).
at::Tensor diagonal_backward(const at::Tensor& d_states, const at::Tensor& w_t,
                             const at::Tensor& act, const at::Tensor& tc, const at::Tensor& c,
                             std::vector<int64_t> lo, std::vector<int64_t> size,
                             std::vector<int64_t> off, std::vector<int64_t> base, int64_t b,
                             int64_t padded) {
  TORCH_CHECK(d_states.is_contiguous() && c.is_contiguous(), "diagonal_backward: contiguous");
  const int64_t n = c.size(1), four_n = 4 * n, pb = padded * b;
  const int64_t hwb = act.numel() / (2 * four_n);
  const int64_t steps = static_cast<int64_t>(size.size());
  const int64_t widest = *std::max_element(size.begin(), size.end()) * b;
  const int64_t slot = widest + 2 * b;  // one column's rows, with a pad row either side
  auto d_gx = at::empty({2, four_n, hwb}, act.options());
  // Gradients reaching the states and cells of the column being processed from the next
  // one, padded like the state buffers; swapped with the *_prev pair after each column.
  auto dh_acc = at::zeros({2, n, slot}, act.options());
  auto dc_acc = at::zeros({2, n, slot}, act.options());
  auto dh_prev = at::zeros({2, n, slot}, act.options());
  auto dc_prev = at::zeros({2, n, slot}, act.options());
  auto d_col_buf = at::empty({2 * 2 * n * widest}, act.options());
  AT_DISPATCH_FLOATING_TYPES(act.scalar_type(), "diagonal_backward", [&] {
    using T = scalar_t;
    const T* ds = d_states.data_ptr<T>();
    for (int64_t s = steps - 1; s >= 0; --s) {
      const int64_t len = size[s] * b, inner = (base[s] + 1) * b;
      T* dh = dh_acc.data_ptr<T>() + b;  // rows lo .. hi of this column's slot
      T* dc = dc_acc.data_ptr<T>() + b;
      for_rows(2, n, len, [&](int64_t d, int64_t j) {
        T* row = dh + d * n * slot + j * slot;
        const T* add = ds + d * n * pb + j * pb + inner;
        for (int64_t q = 0; q < len; ++q) row[q] += add[q];
      });
      const T* cp = nullptr;
      int64_t up_at = 0;  // where row lo - 1 of this column sits in the previous one's slot
      if (s > 0) {
        cp = c.data_ptr<T>() + (base[s - 1] + lo[s] - lo[s - 1]) * b + b;
        up_at = (lo[s] - lo[s - 1]) * b;
      }
      const T* a = act.data_ptr<T>() + 2 * four_n * off[s] * b;
      const T* t = tc.data_ptr<T>() + 2 * n * off[s] * b;
      T* da = d_gx.data_ptr<T>() + off[s] * b;
      cell_backward(rows_of<const T>(dh, n * slot, slot), rows_of(dc, n * slot, slot),
                    rows_of(a, four_n * len, len), rows_of(t, n * len, len),
                    rows_of(cp, n * pb, pb), rows_of(da, four_n * hwb, hwb), 2, n, len);
      if (s == 0) break;
      auto d_col = d_col_buf.narrow(0, 0, 2 * 2 * n * len).view({2, 2 * n, len});
      at::bmm_out(d_col, w_t, d_gx.narrow(2, off[s] * b, len));  // [above; left] gradients
      dh_prev.zero_();
      dc_prev.zero_();
      const T* dcol = d_col.data_ptr<T>();
      T* hp = dh_prev.data_ptr<T>();
      T* cpv = dc_prev.data_ptr<T>();
      for_rows(2, n, len, [&](int64_t d, int64_t j) {
        const T* up = dcol + d * 2 * n * len + j * len;
        const T* lf = dcol + d * 2 * n * len + (n + j) * len;
        T* h_row = hp + d * n * slot + j * slot + up_at;
        T* c_row = cpv + d * n * slot + j * slot + up_at + b;
        const T* dc_row = dc + d * n * slot + j * slot;
        for (int64_t q = 0; q < len; ++q) h_row[q] = up[q];  // row i - 1 read as "above"
        for (int64_t q = 0; q < len; ++q) h_row[b + q] += lf[q];  // row i read as "left"
        std::memcpy(c_row, dc_row, sizeof(T) * len);
      });
      std::swap(dh_acc, dh_prev);
      std::swap(dc_acc, dc_prev);
    }
  });
  return d_gx;
}

}  // namespace

// The fast sampling steps' bodies, in steppers.cpp.
void add_steppers(pybind11::module_& m);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "pixelgen's native recurrence scans and sampling steps (see nn/native.py)";
  m.def("row_forward", &row_forward, "Row LSTM forward scan");
  m.def("row_backward", &row_backward, "Row LSTM backward scan");
  m.def("diagonal_forward", &diagonal_forward, "Diagonal BiLSTM forward scan");
  m.def("diagonal_backward", &diagonal_backward, "Diagonal BiLSTM backward scan");
  add_steppers(m);
}
