// Block quantization of weights and activations.
#include "CKernels.h"
#include "Internal.h"

// The weight quantizers must round exactly as llama.cpp's reference C code
// reads, so no multiply-add may be fused into one rounding.
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

void ck_quantize_q8_0(const float *source, size_t blocks, int8_t *quants, size_t quantStride,
                      uint16_t *scales, size_t scaleStride) {
    for (size_t b = 0; b < blocks; b++) {
        const float *x = source + 32 * b;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        scales[b * scaleStride] = ck_float_to_half(d);
        for (int j = 0; j < 32; j++) {
            const float scaled = x[j] * id;
            quants[b * quantStride + j] = (int8_t)roundf(scaled);
        }
    }
}

/// Quantizes one Q4_0 block: writes its 32 quants (0...15) in value order
/// and returns its scale.
static uint16_t quantize_q4_0_block(const float *x, uint8_t *q) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < 32; j++) {
        const float v = x[j];
        if (amax < fabsf(v)) {
            amax = fabsf(v);
            max = v;
        }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) {
        const float scaled = x[j] * id;
        const int8_t truncated = (int8_t)(scaled + 8.5f);
        q[j] = truncated < 15 ? (uint8_t)truncated : 15;
    }
    return ck_float_to_half(d);
}

void ck_quantize_q4_0(const float *source, size_t pairs, uint8_t *quants, size_t quantStride,
                      uint16_t *scales, size_t scaleStride) {
    for (size_t p = 0; p < pairs; p++) {
        uint8_t low[32], high[32];
        scales[2 * p * scaleStride] = quantize_q4_0_block(source + 64 * p, low);
        scales[(2 * p + 1) * scaleStride] = quantize_q4_0_block(source + 64 * p + 32, high);
        for (int j = 0; j < 32; j++) quants[p * quantStride + j] = (uint8_t)(low[j] | (high[j] << 4));
    }
}

void ck_dequantize_q8_0(const int8_t *quants, size_t quantStride, const uint16_t *scales, size_t scaleStride,
                        size_t blocks, float *destination) {
    for (size_t b = 0; b < blocks; b++) {
        const int8_t *q = quants + b * quantStride;
        float *out = destination + 32 * b;
#if CK_AVX2
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(scales[b * scaleStride]));
        for (int j = 0; j < 32; j += 8) {
            const __m256i widened = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + j)));
            _mm256_storeu_ps(out + j, _mm256_mul_ps(d, _mm256_cvtepi32_ps(widened)));
        }
#else
        const float d = ck_half_to_float(scales[b * scaleStride]);
        for (int j = 0; j < 32; j++) out[j] = d * (float)q[j];
#endif
    }
}

void ck_dequantize_q4_0(const uint8_t *quants, size_t quantStride, const uint16_t *scales, size_t scaleStride,
                        size_t pairs, float *destination) {
    for (size_t p = 0; p < pairs; p++) {
        const uint8_t *q = quants + p * quantStride;
        float *out = destination + 64 * p;
#if CK_AVX2
        const __m256 low = _mm256_set1_ps(_cvtsh_ss(scales[2 * p * scaleStride]));
        const __m256 high = _mm256_set1_ps(_cvtsh_ss(scales[(2 * p + 1) * scaleStride]));
        const __m128i lowMask = _mm_set1_epi8(0x0F);
        const __m256i eight = _mm256_set1_epi32(8);
        for (int j = 0; j < 32; j += 16) {
            const __m128i bytes = _mm_loadu_si128((const __m128i *)(q + j));
            const __m128i lo = _mm_and_si128(bytes, lowMask);
            const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), lowMask);
            __m256i v;
            v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(lo), eight);
            _mm256_storeu_ps(out + j, _mm256_mul_ps(low, _mm256_cvtepi32_ps(v)));
            v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), eight);
            _mm256_storeu_ps(out + j + 8, _mm256_mul_ps(low, _mm256_cvtepi32_ps(v)));
            v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(hi), eight);
            _mm256_storeu_ps(out + 32 + j, _mm256_mul_ps(high, _mm256_cvtepi32_ps(v)));
            v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), eight);
            _mm256_storeu_ps(out + 40 + j, _mm256_mul_ps(high, _mm256_cvtepi32_ps(v)));
        }
#else
        const float low = ck_half_to_float(scales[2 * p * scaleStride]);
        const float high = ck_half_to_float(scales[(2 * p + 1) * scaleStride]);
        for (int j = 0; j < 32; j++) {
            out[j] = low * (float)((int)(q[j] & 0x0F) - 8);
            out[32 + j] = high * (float)((int)(q[j] >> 4) - 8);
        }
#endif
    }
}

void ck_quantize_activation(const float *x, size_t count, size_t blocks,
                            int8_t *quants, float *scales, int32_t *sums) {
    for (size_t b = 0; b < blocks; b++) {
        const size_t start = 32 * b;
        const size_t valid = start >= count ? 0 : (count - start < 32 ? count - start : 32);
        int8_t *q = quants + start;
        if (valid < 32) {
            float padded[32] = {0};
            if (valid > 0) memcpy(padded, x + start, valid * sizeof(float));
            ck_quantize_activation(padded, 32, 1, q, scales + b, sums + b);
            continue;
        }
        const float *v = x + start;
#if CK_AVX2
        const __m256 signBit = _mm256_set1_ps(-0.0f);
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
        __m256 v2 = _mm256_loadu_ps(v + 16), v3 = _mm256_loadu_ps(v + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(signBit, v0), _mm256_andnot_ps(signBit, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(signBit, v2), _mm256_andnot_ps(signBit, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
        // cvtps rounds to nearest even under the default rounding mode.
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
        __m256i sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i sum4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        sum4 = _mm_hadd_epi32(sum4, sum4);
        sum4 = _mm_hadd_epi32(sum4, sum4);
        // Pack to 16 and then 8 bits; packs interleave 128-bit lanes, so undo that.
        __m256i p01 = _mm256_packs_epi32(i0, i1);
        __m256i p23 = _mm256_packs_epi32(i2, i3);
        __m256i packed = _mm256_packs_epi16(p01, p23);
        packed = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)q, packed);
        scales[b] = d;
        sums[b] = _mm_cvtsi128_si32(sum4);
#else
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(v[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) {
            const int32_t value = (int32_t)nearbyintf(v[j] * id);
            q[j] = (int8_t)value;
            sum += value;
        }
        scales[b] = d;
        sums[b] = sum;
#endif
    }
}
