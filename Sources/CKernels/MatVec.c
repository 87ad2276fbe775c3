// Matrix-vector products for one input row (decoding). Four weight rows are
// processed together so each load of x serves four rows.
#include "CKernels.h"
#include "Internal.h"

CK_INLINE void store_result(float *y, float value, int accumulate) {
    *y = accumulate ? *y + value : value;
}

#if CK_AVX2
CK_INLINE void store_four(float *y, __m128 values, int accumulate) {
    if (accumulate) values = _mm_add_ps(values, _mm_loadu_ps(y));
    _mm_storeu_ps(y, values);
}

// One generic loop per float format; LOAD widens eight weights to floats.
#define CK_GEMV_FLOAT(NAME, TYPE, LOAD, SCALAR)                                              \
    void NAME(const TYPE *w, size_t rowStride, size_t rows, const float *x, size_t columns,  \
              float *y, int accumulate) {                                                    \
        const size_t stride = rowStride / sizeof(TYPE);                                      \
        const size_t vectorEnd = columns & ~(size_t)7;                                       \
        size_t r = 0;                                                                        \
        for (; r + 4 <= rows; r += 4) {                                                      \
            const TYPE *w0 = w + r * stride, *w1 = w0 + stride;                              \
            const TYPE *w2 = w1 + stride, *w3 = w2 + stride;                                 \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                       \
            __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();                       \
            __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();                       \
            __m256 b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();                       \
            size_t i = 0;                                                                    \
            /* 16 columns per pass keep more loads in flight per instruction. */             \
            for (; i + 16 <= vectorEnd; i += 16) {                                           \
                const __m256 xa = _mm256_loadu_ps(x + i), xb = _mm256_loadu_ps(x + i + 8);   \
                a0 = _mm256_fmadd_ps(LOAD(w0 + i), xa, a0);                                  \
                a1 = _mm256_fmadd_ps(LOAD(w1 + i), xa, a1);                                  \
                a2 = _mm256_fmadd_ps(LOAD(w2 + i), xa, a2);                                  \
                a3 = _mm256_fmadd_ps(LOAD(w3 + i), xa, a3);                                  \
                b0 = _mm256_fmadd_ps(LOAD(w0 + i + 8), xb, b0);                             \
                b1 = _mm256_fmadd_ps(LOAD(w1 + i + 8), xb, b1);                              \
                b2 = _mm256_fmadd_ps(LOAD(w2 + i + 8), xb, b2);                              \
                b3 = _mm256_fmadd_ps(LOAD(w3 + i + 8), xb, b3);                              \
            }                                                                                \
            for (; i < vectorEnd; i += 8) {                                                  \
                const __m256 xv = _mm256_loadu_ps(x + i);                                    \
                a0 = _mm256_fmadd_ps(LOAD(w0 + i), xv, a0);                                  \
                a1 = _mm256_fmadd_ps(LOAD(w1 + i), xv, a1);                                  \
                a2 = _mm256_fmadd_ps(LOAD(w2 + i), xv, a2);                                  \
                a3 = _mm256_fmadd_ps(LOAD(w3 + i), xv, a3);                                  \
            }                                                                                \
            __m128 sums = ck_hsum4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1),             \
                                   _mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3));            \
            float tail[4] = {0, 0, 0, 0};                                                    \
            for (size_t i = vectorEnd; i < columns; i++) {                                   \
                tail[0] += SCALAR(w0[i]) * x[i];                                             \
                tail[1] += SCALAR(w1[i]) * x[i];                                             \
                tail[2] += SCALAR(w2[i]) * x[i];                                             \
                tail[3] += SCALAR(w3[i]) * x[i];                                             \
            }                                                                                \
            store_four(y + r, _mm_add_ps(sums, _mm_loadu_ps(tail)), accumulate);             \
        }                                                                                    \
        for (; r < rows; r++) {                                                              \
            const TYPE *row = w + r * stride;                                                \
            __m256 a = _mm256_setzero_ps();                                                  \
            for (size_t i = 0; i < vectorEnd; i += 8)                                        \
                a = _mm256_fmadd_ps(LOAD(row + i), _mm256_loadu_ps(x + i), a);               \
            float sum = ck_hsum(a);                                                          \
            for (size_t i = vectorEnd; i < columns; i++) sum += SCALAR(row[i]) * x[i];       \
            store_result(y + r, sum, accumulate);                                            \
        }                                                                                    \
    }
#else
#define CK_GEMV_FLOAT(NAME, TYPE, LOAD, SCALAR)                                              \
    void NAME(const TYPE *w, size_t rowStride, size_t rows, const float *x, size_t columns,  \
              float *y, int accumulate) {                                                    \
        const size_t stride = rowStride / sizeof(TYPE);                                      \
        for (size_t r = 0; r < rows; r++) {                                                  \
            const TYPE *row = w + r * stride;                                                \
            float sum = 0;                                                                   \
            for (size_t i = 0; i < columns; i++) sum += SCALAR(row[i]) * x[i];               \
            store_result(y + r, sum, accumulate);                                            \
        }                                                                                    \
    }
#endif

#define CK_IDENTITY(value) (value)
CK_GEMV_FLOAT(ck_gemv_f32, float, _mm256_loadu_ps, CK_IDENTITY)
CK_GEMV_FLOAT(ck_gemv_f16, uint16_t, ck_load_half8, ck_half_to_float)
CK_GEMV_FLOAT(ck_gemv_bf16, uint16_t, ck_load_bf16x8, ck_bf16_to_float)

#if CK_AVX2
/// Eight int32 partial sums of 32 int8 products, by llama.cpp's sign trick:
/// vpmaddubsw multiplies unsigned by signed bytes, so multiply |w| by x with
/// w's sign. Pair sums stay within int16 because |w|, |x| <= 127.
CK_INLINE __m256i dot_i8_32(__m256i w, __m256i x) {
    __m256i products = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(products, _mm256_set1_epi16(1));
}
#endif

/// Stores the four results of one row group, or the first `valid` of them.
CK_INLINE void store_group(float *y, const float *sums, size_t valid, int accumulate) {
    for (size_t j = 0; j < valid && j < 4; j++) store_result(y + j, sums[j], accumulate);
}

#if CK_AVX2
/// Lane `lane` of `v` in every lane.
#define CK_BROADCAST_LANE(v, lane) _mm256_permutevar8x32_ps((v), _mm256_set1_epi32(lane))
#endif

/// Four results of one Q8_0 row group times one quantized input.
CK_INLINE void q8_0_group(const int8_t *q, const uint16_t *s, size_t blocks,
                          const int8_t *xQuants, const float *xScales, float *sums) {
#if CK_AVX2
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const int8_t *qb = q + 128 * b;
        const __m256i xv = _mm256_loadu_si256((const __m256i *)(xQuants + 32 * b));
        // The four rows' scales of block b, times the input's.
        const __m256 d = _mm256_mul_ps(_mm256_set1_ps(xScales[b]),
                                       _mm256_cvtph_ps(_mm_loadl_epi64((const __m128i *)(s + 4 * b))));
        const __m256i d0 = dot_i8_32(_mm256_loadu_si256((const __m256i *)qb), xv);
        const __m256i d1 = dot_i8_32(_mm256_loadu_si256((const __m256i *)(qb + 32)), xv);
        const __m256i d2 = dot_i8_32(_mm256_loadu_si256((const __m256i *)(qb + 64)), xv);
        const __m256i d3 = dot_i8_32(_mm256_loadu_si256((const __m256i *)(qb + 96)), xv);
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0), CK_BROADCAST_LANE(d, 0), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d1), CK_BROADCAST_LANE(d, 1), a1);
        a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d2), CK_BROADCAST_LANE(d, 2), a2);
        a3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d3), CK_BROADCAST_LANE(d, 3), a3);
    }
    _mm_storeu_ps(sums, ck_hsum4(a0, a1, a2, a3));
#else
    for (size_t j = 0; j < 4; j++) {
        float sum = 0;
        for (size_t b = 0; b < blocks; b++) {
            const int8_t *qb = q + 128 * b + 32 * j;
            int32_t dot = 0;
            for (int i = 0; i < 32; i++) dot += (int32_t)qb[i] * (int32_t)xQuants[32 * b + i];
            sum += (float)dot * (xScales[b] * ck_half_to_float(s[4 * b + j]));
        }
        sums[j] = sum;
    }
#endif
}

void ck_gemv_q8_0(const int8_t *quants, const uint16_t *scales, size_t blocks, size_t rows,
                  const int8_t *xQuants, const float *xScales, size_t inputs,
                  float *y, size_t yStride, int accumulate) {
    for (size_t group = 0; group * 4 < rows; group++) {
        const int8_t *q = quants + group * blocks * 128;
        const uint16_t *s = scales + group * blocks * 4;
        // Inputs after the first find this group's weights in L1.
        for (size_t t = 0; t < inputs; t++) {
            float sums[4];
            q8_0_group(q, s, blocks, xQuants + t * blocks * 32, xScales + t * blocks, sums);
            store_group(y + t * yStride + 4 * group, sums, rows - 4 * group, accumulate);
        }
    }
}

#if CK_AVX2
/// Eight int32 partial sums of one Q4_0 block (quants 0...15 in `nibbles`)
/// times x, minus sum(x) in every lane: in total exactly sum((q - 8) * x),
/// because the 8 lanes remove 8 * sum(x). Pair sums stay within int16
/// because q <= 15 and |x| <= 127.
CK_INLINE __m256i dot_q4_32(__m256i nibbles, __m256i x, __m256i xSumPerLane) {
    __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(nibbles, x), _mm256_set1_epi16(1));
    return _mm256_sub_epi32(sums, xSumPerLane);
}
#endif

/// Four results of one Q4_0 row group times one quantized input.
CK_INLINE void q4_0_group(const uint8_t *q, const uint16_t *s, size_t blocks,
                          const int8_t *xQuants, const float *xScales, const int32_t *xSums, float *sums) {
    const size_t pairs = blocks / 2;
#if CK_AVX2
    const __m256i lowMask = _mm256_set1_epi8(0x0F);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (size_t p = 0; p < pairs; p++) {
        const uint8_t *qp = q + 128 * p;
        const __m256i xa = _mm256_loadu_si256((const __m256i *)(xQuants + 64 * p));
        const __m256i xb = _mm256_loadu_si256((const __m256i *)(xQuants + 64 * p + 32));
        const __m256i sa = _mm256_set1_epi32(xSums[2 * p]);
        const __m256i sb = _mm256_set1_epi32(xSums[2 * p + 1]);
        // Lanes 0-3: block 2p of the four rows; lanes 4-7: block 2p + 1.
        const __m256 xScale = _mm256_setr_m128(_mm_set1_ps(xScales[2 * p]), _mm_set1_ps(xScales[2 * p + 1]));
        const __m256 d = _mm256_mul_ps(xScale, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 8 * p))));
        for (int k = 0; k < 4; k++) {
            const __m256i bytes = _mm256_loadu_si256((const __m256i *)(qp + 32 * k));
            const __m256i low = _mm256_and_si256(bytes, lowMask);
            const __m256i high = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), lowMask);
            const __m256i da = dot_q4_32(low, xa, sa);
            const __m256i db = dot_q4_32(high, xb, sb);
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(da), CK_BROADCAST_LANE(d, k), acc[k]);
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(db), CK_BROADCAST_LANE(d, 4 + k), acc[k]);
        }
    }
    _mm_storeu_ps(sums, ck_hsum4(acc[0], acc[1], acc[2], acc[3]));
#else
    (void)xSums;
    for (size_t j = 0; j < 4; j++) {
        float sum = 0;
        for (size_t p = 0; p < pairs; p++) {
            const uint8_t *qp = q + 128 * p + 32 * j;
            int32_t dotLow = 0, dotHigh = 0;
            for (int i = 0; i < 32; i++) {
                dotLow += ((int32_t)(qp[i] & 0x0F) - 8) * (int32_t)xQuants[64 * p + i];
                dotHigh += ((int32_t)(qp[i] >> 4) - 8) * (int32_t)xQuants[64 * p + 32 + i];
            }
            sum += (float)dotLow * (xScales[2 * p] * ck_half_to_float(s[8 * p + j]));
            sum += (float)dotHigh * (xScales[2 * p + 1] * ck_half_to_float(s[8 * p + 4 + j]));
        }
        sums[j] = sum;
    }
#endif
}

void ck_gemv_q4_0(const uint8_t *quants, const uint16_t *scales, size_t blocks, size_t rows,
                  const int8_t *xQuants, const float *xScales, const int32_t *xSums, size_t inputs,
                  float *y, size_t yStride, int accumulate) {
    for (size_t group = 0; group * 4 < rows; group++) {
        const uint8_t *q = quants + group * (blocks / 2) * 128;
        const uint16_t *s = scales + group * blocks * 4;
        // Inputs after the first find this group's weights in L1.
        for (size_t t = 0; t < inputs; t++) {
            float sums[4];
            q4_0_group(q, s, blocks, xQuants + t * blocks * 32, xScales + t * blocks, xSums + t * blocks, sums);
            store_group(y + t * yStride + 4 * group, sums, rows - 4 * group, accumulate);
        }
    }
}
