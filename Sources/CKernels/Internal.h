// Helpers shared by the kernel files; not part of the public header.
#ifndef CKERNELS_INTERNAL_H
#define CKERNELS_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define CK_AVX2 1
#include <immintrin.h>
#else
#define CK_AVX2 0
#endif

#define CK_INLINE static inline __attribute__((always_inline))

/// binary16 bits to float, exact for every value.
CK_INLINE float ck_half_to_float(uint16_t bits) {
#if CK_AVX2
    return _cvtsh_ss(bits);
#else
    uint32_t sign = (uint32_t)(bits & 0x8000) << 16;
    uint32_t exponent = (bits >> 10) & 0x1F;
    uint32_t mantissa = bits & 0x3FF;
    uint32_t result;
    if (exponent == 0x1F) {
        result = sign | 0x7F800000u | (mantissa << 13);
    } else if (exponent != 0) {
        result = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else {
        // Zero or subnormal: mantissa * 2^-24, exact in binary32.
        float magnitude = (float)mantissa * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    float value;
    memcpy(&value, &result, 4);
    return value;
#endif
}

/// Float to binary16 bits, round to nearest even; overflow gives infinity.
CK_INLINE uint16_t ck_float_to_half(float value) {
#if CK_AVX2
    return _cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT);
#else
    uint32_t bits;
    memcpy(&bits, &value, 4);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    int exponent = (int)((bits >> 23) & 0xFF);
    uint32_t mantissa = bits & 0x7FFFFF;
    if (exponent == 0xFF) return sign | 0x7C00 | (mantissa ? 0x200 : 0);
    int halfExponent = exponent - 127 + 15;
    if (halfExponent >= 0x1F) return sign | 0x7C00;
    if (halfExponent <= 0) {
        if (halfExponent < -10) return sign;
        mantissa |= 0x800000;
        uint32_t shift = (uint32_t)(14 - halfExponent);
        uint32_t half = mantissa >> shift;
        uint32_t remainder = mantissa & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (remainder > halfway || (remainder == halfway && (half & 1))) half += 1;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)halfExponent << 10) | (mantissa >> 13);
    uint32_t remainder = mantissa & 0x1FFF;
    // A carry out of the mantissa correctly bumps the exponent, up to infinity.
    if (remainder > 0x1000 || (remainder == 0x1000 && (half & 1))) half += 1;
    return sign | (uint16_t)half;
#endif
}

CK_INLINE float ck_bf16_to_float(uint16_t bits) {
    uint32_t widened = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &widened, 4);
    return value;
}

#if CK_AVX2
/// Sum of the eight lanes.
CK_INLINE float ck_hsum(__m256 v) {
    __m128 four = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 two = _mm_add_ps(four, _mm_movehl_ps(four, four));
    __m128 one = _mm_add_ss(two, _mm_movehdup_ps(two));
    return _mm_cvtss_f32(one);
}

/// Lane i of the result is the sum of the eight lanes of argument i.
CK_INLINE __m128 ck_hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b);
    __m256 cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/// Loads `count` (0...8) floats, zero-filling the other lanes.
CK_INLINE __m256 ck_load_partial(const float *p, size_t count) {
    static const int32_t maskSource[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    __m256i mask = _mm256_loadu_si256((const __m256i *)(maskSource + 8 - count));
    return _mm256_maskload_ps(p, mask);
}

/// Eight binary16 values to floats.
CK_INLINE __m256 ck_load_half8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/// Eight bfloat16 values to floats.
CK_INLINE __m256 ck_load_bf16x8(const uint16_t *p) {
    __m256i widened = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(widened, 16));
}

/// exp(x) per lane: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial
/// for e^r, and 2^n built in the exponent bits. Relative error below 3e-7
/// over [-87, 88.5] (a sweep against double exp). Inputs under -87.3 give 0,
/// inputs over 88.7 give infinity (the true result overflows from 88.72), and
/// NaN stays NaN.
CK_INLINE __m256 ck_exp8(__m256 x) {
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2High = _mm256_set1_ps(0.693359375f);
    const __m256 ln2Low = _mm256_set1_ps(-2.12194440e-4f);
    __m256 clamped = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, ln2High, clamped);
    r = _mm256_fnmadd_ps(n, ln2Low, r);
    // Taylor coefficients 1/k! for k = 6 ... 2, evaluated by Horner's rule.
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^n as two factors 2^(n/2) and 2^(n - n/2), so n = 128 stays finite.
    __m256i whole = _mm256_cvtps_epi32(n);
    __m256i half = _mm256_srai_epi32(whole, 1);
    __m256i rest = _mm256_sub_epi32(whole, half);
    __m256 scale1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
    __m256 scale2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest, _mm256_set1_epi32(127)), 23));
    __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, scale1), scale2);
    // Below the clamp the true result is under the smallest normal float: flush to 0.
    result = _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ), result);
    result = _mm256_blendv_ps(result, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(88.7f), _CMP_GT_OQ));
    return _mm256_blendv_ps(result, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}
#endif

#endif
