// Matrix-matrix products for several input rows (prefill, scoring, LoRA).
//
// The Swift side walks the output in panels of CK_PANEL_ROWS weight rows and
// blocks of kc columns. ck_pack_panel widens one panel of any format into
// floats once, and ck_gemm_panel multiplies it with every input row, so the
// conversion and the weight reads are shared by all rows. The register tile is
// CK_TILE_ROWS input rows by CK_PANEL_ROWS weight rows: 12 accumulators,
// 3 weight vectors and 1 input vector fill the 16 AVX2 registers.
#include "CKernels.h"
#include "Internal.h"

/// Returns the first quant byte of `row` in the four-row interleaved layout.
/// The row's next 32-byte unit (a block for Q8_0, a block pair for Q4_0)
/// is 128 bytes further.
CK_INLINE const int8_t *ck_quantized_row_quants(const ck_weights *weights, size_t row) {
    const size_t unitsPerRow = weights->format == CK_FORMAT_Q4_0 ? weights->blocksPerRow / 2 : weights->blocksPerRow;
    return (const int8_t *)weights->data + (row / 4) * unitsPerRow * 128 + (row % 4) * 32;
}

/// Returns the first scale of `row`; the row's next block scale is 4
/// elements further.
CK_INLINE const uint16_t *ck_quantized_row_scales(const ck_weights *weights, size_t row) {
    return weights->scales + (row / 4) * weights->blocksPerRow * 4 + row % 4;
}

static void pack_row(const ck_weights *weights, size_t row, size_t k0, size_t kc, size_t columns,
                     float *destination, size_t paddedKc) {
    const uint8_t *base = (const uint8_t *)weights->data + row * weights->rowStride;
    const size_t available = k0 >= columns ? 0 : (columns - k0 < kc ? columns - k0 : kc);
    size_t written = available;
    switch (weights->format) {
    case CK_FORMAT_F32:
        memcpy(destination, (const float *)base + k0, available * sizeof(float));
        break;
    case CK_FORMAT_F16:
        ck_f16_to_f32((const uint16_t *)base + k0, destination, available);
        break;
    case CK_FORMAT_BF16:
        ck_bf16_to_f32((const uint16_t *)base + k0, destination, available);
        break;
    case CK_FORMAT_Q8_0: {
        // Whole blocks: the stored padding past `columns` dequantizes to 0.
        const size_t blocks = (available + 31) / 32;
        const size_t firstBlock = k0 / 32;
        ck_dequantize_q8_0(ck_quantized_row_quants(weights, row) + 128 * firstBlock, 128,
                           ck_quantized_row_scales(weights, row) + 4 * firstBlock, 4, blocks, destination);
        written = blocks * 32;
        break;
    }
    case CK_FORMAT_Q4_0: {
        const size_t pairs = (available + 63) / 64;
        const size_t firstPair = k0 / 64;
        ck_dequantize_q4_0((const uint8_t *)ck_quantized_row_quants(weights, row) + 128 * firstPair, 128,
                           ck_quantized_row_scales(weights, row) + 8 * firstPair, 4, pairs, destination);
        written = pairs * 64;
        break;
    }
    }
    if (written < paddedKc) memset(destination + written, 0, (paddedKc - written) * sizeof(float));
}

void ck_pack_panel(const ck_weights *weights, size_t row, size_t count, size_t k0, size_t kc,
                   size_t columns, float *panel, size_t paddedKc) {
    for (size_t j = 0; j < CK_PANEL_ROWS; j++) {
        float *destination = panel + j * paddedKc;
        if (j < count) {
            pack_row(weights, row + j, k0, kc, columns, destination, paddedKc);
        } else {
            memset(destination, 0, paddedKc * sizeof(float));
        }
    }
}

#if CK_AVX2
/// The register tile for `rows` (1...4) input rows; constant-folded per call site.
CK_INLINE void gemm_tile(const float *panel, size_t paddedKc, size_t validColumns,
                         const float *x, size_t xStride, size_t rows, size_t kc,
                         float *y, size_t yStride, int accumulate) {
    const float *w0 = panel, *w1 = panel + paddedKc, *w2 = panel + 2 * paddedKc;
    const float *x0 = x, *x1 = x + xStride, *x2 = x + 2 * xStride, *x3 = x + 3 * xStride;
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c32 = _mm256_setzero_ps();
    const size_t vectorEnd = kc & ~(size_t)7;
    size_t k = 0;
    for (; k < vectorEnd; k += 8) {
        const __m256 v0 = _mm256_loadu_ps(w0 + k), v1 = _mm256_loadu_ps(w1 + k), v2 = _mm256_loadu_ps(w2 + k);
        __m256 xv = _mm256_loadu_ps(x0 + k);
        c00 = _mm256_fmadd_ps(xv, v0, c00); c01 = _mm256_fmadd_ps(xv, v1, c01); c02 = _mm256_fmadd_ps(xv, v2, c02);
        if (rows > 1) {
            xv = _mm256_loadu_ps(x1 + k);
            c10 = _mm256_fmadd_ps(xv, v0, c10); c11 = _mm256_fmadd_ps(xv, v1, c11); c12 = _mm256_fmadd_ps(xv, v2, c12);
        }
        if (rows > 2) {
            xv = _mm256_loadu_ps(x2 + k);
            c20 = _mm256_fmadd_ps(xv, v0, c20); c21 = _mm256_fmadd_ps(xv, v1, c21); c22 = _mm256_fmadd_ps(xv, v2, c22);
        }
        if (rows > 3) {
            xv = _mm256_loadu_ps(x3 + k);
            c30 = _mm256_fmadd_ps(xv, v0, c30); c31 = _mm256_fmadd_ps(xv, v1, c31); c32 = _mm256_fmadd_ps(xv, v2, c32);
        }
    }
    if (k < kc) {
        // The panel is zero past kc; only x needs a partial load.
        const size_t tail = kc - k;
        const __m256 v0 = _mm256_loadu_ps(w0 + k), v1 = _mm256_loadu_ps(w1 + k), v2 = _mm256_loadu_ps(w2 + k);
        __m256 xv = ck_load_partial(x0 + k, tail);
        c00 = _mm256_fmadd_ps(xv, v0, c00); c01 = _mm256_fmadd_ps(xv, v1, c01); c02 = _mm256_fmadd_ps(xv, v2, c02);
        if (rows > 1) {
            xv = ck_load_partial(x1 + k, tail);
            c10 = _mm256_fmadd_ps(xv, v0, c10); c11 = _mm256_fmadd_ps(xv, v1, c11); c12 = _mm256_fmadd_ps(xv, v2, c12);
        }
        if (rows > 2) {
            xv = ck_load_partial(x2 + k, tail);
            c20 = _mm256_fmadd_ps(xv, v0, c20); c21 = _mm256_fmadd_ps(xv, v1, c21); c22 = _mm256_fmadd_ps(xv, v2, c22);
        }
        if (rows > 3) {
            xv = ck_load_partial(x3 + k, tail);
            c30 = _mm256_fmadd_ps(xv, v0, c30); c31 = _mm256_fmadd_ps(xv, v1, c31); c32 = _mm256_fmadd_ps(xv, v2, c32);
        }
    }
    // Lane t of column j is the output of input row t and weight row j.
    float sums[CK_PANEL_ROWS][4];
    _mm_storeu_ps(sums[0], ck_hsum4(c00, c10, c20, c30));
    _mm_storeu_ps(sums[1], ck_hsum4(c01, c11, c21, c31));
    _mm_storeu_ps(sums[2], ck_hsum4(c02, c12, c22, c32));
    for (size_t t = 0; t < rows; t++) {
        float *out = y + t * yStride;
        for (size_t j = 0; j < validColumns; j++) {
            out[j] = accumulate ? out[j] + sums[j][t] : sums[j][t];
        }
    }
}
#endif

void ck_gemm_panel(const float *panel, size_t paddedKc, size_t validColumns,
                   const float *x, size_t xStride, size_t rows, size_t kc,
                   float *y, size_t yStride, int accumulate) {
#if CK_AVX2
    size_t t = 0;
    for (; t + 4 <= rows; t += 4) {
        gemm_tile(panel, paddedKc, validColumns, x + t * xStride, xStride, 4, kc, y + t * yStride, yStride, accumulate);
    }
    switch (rows - t) {
    case 3: gemm_tile(panel, paddedKc, validColumns, x + t * xStride, xStride, 3, kc, y + t * yStride, yStride, accumulate); break;
    case 2: gemm_tile(panel, paddedKc, validColumns, x + t * xStride, xStride, 2, kc, y + t * yStride, yStride, accumulate); break;
    case 1: gemm_tile(panel, paddedKc, validColumns, x + t * xStride, xStride, 1, kc, y + t * yStride, yStride, accumulate); break;
    default: break;
    }
#else
    for (size_t t = 0; t < rows; t++) {
        const float *input = x + t * xStride;
        float *out = y + t * yStride;
        for (size_t j = 0; j < validColumns; j++) {
            const float *w = panel + j * paddedKc;
            float sum = 0;
            for (size_t k = 0; k < kc; k++) sum += input[k] * w[k];
            out[j] = accumulate ? out[j] + sum : sum;
        }
    }
#endif
}

void ck_gemm_short_rows(const ck_weights *weights, size_t firstOut, size_t outCount, size_t columns,
                        const float *x, size_t rows, float *y, size_t yStride, int accumulate) {
    // Weight rows are widened and transposed 16 at a time: transposed[k][j]
    // is column k of weight row firstOut + block + j.
    float rowsBuffer[16 * CK_SHORT_ROW_MAX];
    float transposed[CK_SHORT_ROW_MAX * 16];
    for (size_t block = 0; block < outCount; block += 16) {
        const size_t count = outCount - block < 16 ? outCount - block : 16;
        for (size_t j = 0; j < 16; j++) {
            float *destination = rowsBuffer + j * CK_SHORT_ROW_MAX;
            if (j < count) {
                pack_row(weights, firstOut + block + j, 0, columns, columns, destination, CK_SHORT_ROW_MAX);
            } else {
                memset(destination, 0, CK_SHORT_ROW_MAX * sizeof(float));
            }
        }
        for (size_t k = 0; k < columns; k++) {
            for (size_t j = 0; j < 16; j++) transposed[k * 16 + j] = rowsBuffer[j * CK_SHORT_ROW_MAX + k];
        }
        float *out = y + block;
#if CK_AVX2
        size_t t = 0;
        for (; t + 4 <= rows; t += 4) {
            __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
            __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
            const float *x0 = x + t * columns, *x1 = x0 + columns, *x2 = x1 + columns, *x3 = x2 + columns;
            for (size_t k = 0; k < columns; k++) {
                const __m256 w0 = _mm256_loadu_ps(transposed + 16 * k), w1 = _mm256_loadu_ps(transposed + 16 * k + 8);
                __m256 b = _mm256_broadcast_ss(x0 + k);
                c00 = _mm256_fmadd_ps(b, w0, c00); c01 = _mm256_fmadd_ps(b, w1, c01);
                b = _mm256_broadcast_ss(x1 + k);
                c10 = _mm256_fmadd_ps(b, w0, c10); c11 = _mm256_fmadd_ps(b, w1, c11);
                b = _mm256_broadcast_ss(x2 + k);
                c20 = _mm256_fmadd_ps(b, w0, c20); c21 = _mm256_fmadd_ps(b, w1, c21);
                b = _mm256_broadcast_ss(x3 + k);
                c30 = _mm256_fmadd_ps(b, w0, c30); c31 = _mm256_fmadd_ps(b, w1, c31);
            }
            float sums[4][16];
            _mm256_storeu_ps(sums[0], c00); _mm256_storeu_ps(sums[0] + 8, c01);
            _mm256_storeu_ps(sums[1], c10); _mm256_storeu_ps(sums[1] + 8, c11);
            _mm256_storeu_ps(sums[2], c20); _mm256_storeu_ps(sums[2] + 8, c21);
            _mm256_storeu_ps(sums[3], c30); _mm256_storeu_ps(sums[3] + 8, c31);
            for (size_t i = 0; i < 4; i++) {
                float *row = out + (t + i) * yStride;
                for (size_t j = 0; j < count; j++) row[j] = accumulate ? row[j] + sums[i][j] : sums[i][j];
            }
        }
        for (; t < rows; t++) {
            __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps();
            for (size_t k = 0; k < columns; k++) {
                const __m256 b = _mm256_broadcast_ss(x + t * columns + k);
                c0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(transposed + 16 * k), c0);
                c1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(transposed + 16 * k + 8), c1);
            }
            float sums[16];
            _mm256_storeu_ps(sums, c0);
            _mm256_storeu_ps(sums + 8, c1);
            float *row = out + t * yStride;
            for (size_t j = 0; j < count; j++) row[j] = accumulate ? row[j] + sums[j] : sums[j];
        }
#else
        for (size_t t = 0; t < rows; t++) {
            float *row = out + t * yStride;
            for (size_t j = 0; j < count; j++) {
                float sum = 0;
                for (size_t k = 0; k < columns; k++) sum += x[t * columns + k] * transposed[k * 16 + j];
                row[j] = accumulate ? row[j] + sum : sum;
            }
        }
#endif
    }
}
