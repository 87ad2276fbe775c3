// Hot inner loops of the Tensor module, in C for direct access to AVX2 integer
// and F16C intrinsics that Swift SIMD types cannot express (vpmaddubsw,
// vpsignb, vcvtph2ps). Each function has a plain-C fallback: the AVX2 path is
// compiled only when the compiler targets AVX2, FMA and F16C (the package
// passes -mavx2 -mfma -mf16c on x86-64), so the target also builds on arm64
// and on baseline x86-64.
//
// All functions are single-threaded and take raw pointers; the Swift side
// splits work across threads and checks shapes. Matrices are row-major.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Hint to the processor that the caller is spinning on a shared variable.
static inline void ck_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Returns 1 when this build uses the AVX2 code paths, 0 for plain C.
int ck_uses_avx2(void);

// MARK: Conversions

void ck_f16_to_f32(const uint16_t *source, float *destination, size_t count);
/// Rounds to nearest binary16, ties to even; overflow gives infinity.
void ck_f32_to_f16(const float *source, uint16_t *destination, size_t count);
void ck_bf16_to_f32(const uint16_t *source, float *destination, size_t count);

// MARK: Block quantization (formats documented in Quantization.swift)

/// Quantizes `blocks` blocks of 32 values to Q8_0: one binary16 scale and 32
/// int8 quants per block, rounding as llama.cpp's quantize_row_q8_0_ref does.
/// Block b's quants go to quants + b * quantStride and its scale to
/// scales[b * scaleStride].
void ck_quantize_q8_0(const float *source, size_t blocks, int8_t *quants, size_t quantStride,
                      uint16_t *scales, size_t scaleStride);

/// Quantizes `pairs` pairs of 32-value blocks to Q4_0, rounding as llama.cpp's
/// quantize_row_q4_0_ref does. Pair p's 32 bytes go to quants + p *
/// quantStride: byte j stores value 64p + j in its low nibble and value
/// 64p + 32 + j in its high nibble. Block b's scale goes to scales[b * scaleStride].
void ck_quantize_q4_0(const float *source, size_t pairs, uint8_t *quants, size_t quantStride,
                      uint16_t *scales, size_t scaleStride);

/// Inverse of ck_quantize_q8_0, with the same strides.
void ck_dequantize_q8_0(const int8_t *quants, size_t quantStride, const uint16_t *scales, size_t scaleStride,
                        size_t blocks, float *destination);
/// Inverse of ck_quantize_q4_0, with the same strides.
void ck_dequantize_q4_0(const uint8_t *quants, size_t quantStride, const uint16_t *scales, size_t scaleStride,
                        size_t pairs, float *destination);

/// Quantizes an activation vector of `count` values to int8 blocks of 32 with a
/// float scale per block (round to nearest, ties to even), zero-filling up to
/// `blocks * 32`. `sums[b]` receives the sum of block b's quants.
void ck_quantize_activation(const float *x, size_t count, size_t blocks,
                            int8_t *quants, float *scales, int32_t *sums);

// MARK: Matrix-vector products, y[r] (+)= dot(W[r], x) for r in 0..<rows

void ck_gemv_f32(const float *w, size_t rowStride, size_t rows,
                 const float *x, size_t columns, float *y, int accumulate);
void ck_gemv_f16(const uint16_t *w, size_t rowStride, size_t rows,
                 const float *x, size_t columns, float *y, int accumulate);
void ck_gemv_bf16(const uint16_t *w, size_t rowStride, size_t rows,
                  const float *x, size_t columns, float *y, int accumulate);

/// Q8_0 rows in the four-row interleaved layout (Quantization.swift) times
/// `inputs` activations from ck_quantize_activation, stored one after another
/// (`blocks * 32` quants and `blocks` scales each). `quants` and `scales`
/// point at the first group of four rows. Input t's first `rows` results go
/// to y + t * yStride; padding rows of the last group are computed but not
/// stored. Each input's results are computed exactly as with `inputs` = 1.
void ck_gemv_q8_0(const int8_t *quants, const uint16_t *scales, size_t blocks, size_t rows,
                  const int8_t *xQuants, const float *xScales, size_t inputs,
                  float *y, size_t yStride, int accumulate);

/// ck_gemv_q8_0 for Q4_0 rows; `blocks` is even, and `xSums` has `blocks`
/// sums per input.
void ck_gemv_q4_0(const uint8_t *quants, const uint16_t *scales, size_t blocks, size_t rows,
                  const int8_t *xQuants, const float *xScales, const int32_t *xSums, size_t inputs,
                  float *y, size_t yStride, int accumulate);

// MARK: Matrix-matrix products

/// Weight storage formats understood by ck_pack_panel.
typedef enum {
    CK_FORMAT_F32 = 0,
    CK_FORMAT_F16 = 1,
    CK_FORMAT_BF16 = 2,
    CK_FORMAT_Q8_0 = 3,
    CK_FORMAT_Q4_0 = 4,
} ck_format;

/// Weight rows per packed panel.
#define CK_PANEL_ROWS 3
/// Input rows per register tile of ck_gemm_panel.
#define CK_TILE_ROWS 4

/// Describes one weight matrix for ck_pack_panel. For float formats `data` is
/// the matrix and `rowStride` its row length in bytes. For Q8_0 and Q4_0,
/// `data` and `scales` are the quants and scales in the four-row interleaved
/// layout (Quantization.swift) with `blocksPerRow` blocks per row.
typedef struct {
    ck_format format;
    const void *data;
    size_t rowStride;
    const uint16_t *scales;
    size_t blocksPerRow;
} ck_weights;

/// Widens weight rows [row, row + count) (count <= CK_PANEL_ROWS), columns
/// [k0, k0 + kc), into `panel` as CK_PANEL_ROWS rows of `paddedKc` floats.
/// Missing rows and columns past kc are zero. For the quantized formats k0
/// must be a multiple of 64 and paddedKc at least kc rounded up to 64 (whole
/// blocks are widened); otherwise paddedKc is a multiple of 8 that is >= kc.
void ck_pack_panel(const ck_weights *weights, size_t row, size_t count, size_t k0, size_t kc,
                   size_t columns, float *panel, size_t paddedKc);

/// y[t][n0 + j] (+)= dot(x[t][0..<kc], panel[j]) for t in 0..<rows and
/// j in 0..<validColumns; `x` rows are `xStride` floats apart and `y` rows
/// `yStride` floats apart.
void ck_gemm_panel(const float *panel, size_t paddedKc, size_t validColumns,
                   const float *x, size_t xStride, size_t rows, size_t kc,
                   float *y, size_t yStride, int accumulate);

/// Maximum input row length that ck_gemm_short_rows accepts.
#define CK_SHORT_ROW_MAX 64

/// y[t][j] (+)= dot(x[t], W[firstOut + j]) for t in 0..<rows and j in
/// 0..<outCount, for weight rows of `columns` <= CK_SHORT_ROW_MAX values (the
/// up projection of a LoRA product, whose input is the rank). `x` rows are
/// `columns` floats apart and `y` starts at output firstOut of row 0, rows
/// `yStride` floats apart. Broadcasts inputs against transposed weights, so no
/// horizontal sums are needed for short rows.
void ck_gemm_short_rows(const ck_weights *weights, size_t firstOut, size_t outCount, size_t columns,
                        const float *x, size_t rows, float *y, size_t yStride, int accumulate);

// MARK: Attention

/// Attention of `groupSize` query vectors (`queryStride` floats apart) over
/// `positions` cached key/value rows (`cacheStride` elements apart), all heads
/// of one group sharing the key/value head. Keys and values are floats, or
/// binary16 bits when `halfCache` is nonzero. `scores` has room for
/// groupSize * positions floats.
///
/// With `maxima == NULL` the normalized result goes to `output`. Otherwise the
/// result is left unnormalized, and maxima[g] and sums[g] receive the
/// running maximum score and the sum of exp(score - maximum), so partial
/// results over disjoint position ranges can be merged.
void ck_attention_group(const float *queries, size_t queryStride, size_t groupSize,
                        const void *keys, const void *values, int halfCache, size_t cacheStride,
                        size_t headDim, size_t positions, float scale, float *scores,
                        float *output, size_t outputStride, float *maxima, float *sums);

// MARK: Elementwise

/// gate[i] = gate[i] / (1 + exp(-gate[i])) * up[i]. The AVX2 path uses a
/// polynomial exp (ck_exp8 in Internal.h).
void ck_silu_multiply(float *gate, const float *up, size_t count);

#ifdef __cplusplus
}
#endif

#endif
