// Element type conversions and elementwise functions.
#include "CKernels.h"
#include "Internal.h"

int ck_uses_avx2(void) { return CK_AVX2; }

void ck_f16_to_f32(const uint16_t *source, float *destination, size_t count) {
    size_t i = 0;
#if CK_AVX2
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(destination + i, ck_load_half8(source + i));
#endif
    for (; i < count; i++) destination[i] = ck_half_to_float(source[i]);
}

void ck_f32_to_f16(const float *source, uint16_t *destination, size_t count) {
    size_t i = 0;
#if CK_AVX2
    for (; i + 8 <= count; i += 8) {
        __m128i half = _mm256_cvtps_ph(_mm256_loadu_ps(source + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(destination + i), half);
    }
#endif
    for (; i < count; i++) destination[i] = ck_float_to_half(source[i]);
}

void ck_bf16_to_f32(const uint16_t *source, float *destination, size_t count) {
    size_t i = 0;
#if CK_AVX2
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(destination + i, ck_load_bf16x8(source + i));
#endif
    for (; i < count; i++) destination[i] = ck_bf16_to_float(source[i]);
}

void ck_silu_multiply(float *gate, const float *up, size_t count) {
    size_t i = 0;
#if CK_AVX2
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= count; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = ck_exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
        __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
#endif
    for (; i < count; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
