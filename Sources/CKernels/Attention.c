// Attention of one group of query heads that share a key/value head.
#include "CKernels.h"
#include "Internal.h"

CK_INLINE float load_cache(const void *base, size_t index, int halfCache) {
    return halfCache ? ck_half_to_float(((const uint16_t *)base)[index]) : ((const float *)base)[index];
}

#if CK_AVX2
CK_INLINE __m256 load_cache8(const void *base, size_t index, int halfCache) {
    return halfCache ? ck_load_half8((const uint16_t *)base + index) : _mm256_loadu_ps((const float *)base + index);
}
#endif

/// scores[g * positions + p] = scale * dot(query g, key p).
static void compute_scores(const float *queries, size_t queryStride, size_t groupSize,
                           const void *keys, int halfCache, size_t cacheStride,
                           size_t headDim, size_t positions, float scale, float *scores) {
    size_t p = 0;
#if CK_AVX2
    const size_t vectorEnd = headDim & ~(size_t)7;
    // Four positions per pass: their keys stay in L1 while every head of the
    // group takes its four dot products, and one ck_hsum4 finishes all four.
    for (; p + 4 <= positions; p += 4) {
        for (size_t g = 0; g < groupSize; g++) {
            const float *q = queries + g * queryStride;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
            for (size_t d = 0; d < vectorEnd; d += 8) {
                const __m256 qv = _mm256_loadu_ps(q + d);
                a0 = _mm256_fmadd_ps(load_cache8(keys, p * cacheStride + d, halfCache), qv, a0);
                a1 = _mm256_fmadd_ps(load_cache8(keys, (p + 1) * cacheStride + d, halfCache), qv, a1);
                a2 = _mm256_fmadd_ps(load_cache8(keys, (p + 2) * cacheStride + d, halfCache), qv, a2);
                a3 = _mm256_fmadd_ps(load_cache8(keys, (p + 3) * cacheStride + d, halfCache), qv, a3);
            }
            float dots[4];
            _mm_storeu_ps(dots, ck_hsum4(a0, a1, a2, a3));
            for (size_t d = vectorEnd; d < headDim; d++) {
                for (size_t j = 0; j < 4; j++) dots[j] += load_cache(keys, (p + j) * cacheStride + d, halfCache) * q[d];
            }
            for (size_t j = 0; j < 4; j++) scores[g * positions + p + j] = dots[j] * scale;
        }
    }
    for (; p < positions; p++) {
        for (size_t g = 0; g < groupSize; g++) {
            const float *q = queries + g * queryStride;
            __m256 a = _mm256_setzero_ps();
            for (size_t d = 0; d < vectorEnd; d += 8) {
                a = _mm256_fmadd_ps(load_cache8(keys, p * cacheStride + d, halfCache), _mm256_loadu_ps(q + d), a);
            }
            float dot = ck_hsum(a);
            for (size_t d = vectorEnd; d < headDim; d++) dot += load_cache(keys, p * cacheStride + d, halfCache) * q[d];
            scores[g * positions + p] = dot * scale;
        }
    }
#else
    for (; p < positions; p++) {
        for (size_t g = 0; g < groupSize; g++) {
            const float *q = queries + g * queryStride;
            float dot = 0;
            for (size_t d = 0; d < headDim; d++) dot += load_cache(keys, p * cacheStride + d, halfCache) * q[d];
            scores[g * positions + p] = dot * scale;
        }
    }
#endif
}

#if CK_AVX2
/// output[g][d..<d+8] = sum over p of weights[g][p] * value[p][d..<d+8] for
/// `width` (1...8) heads. With `width` a constant the accumulators stay in
/// registers and each value vector is widened once for all heads. Up to four
/// heads, even and odd positions go to separate accumulators, so at least
/// eight multiply-add chains hide the FMA latency.
CK_INLINE void accumulate_values(int width, const float *weights, size_t positions,
                                 const void *values, int halfCache, size_t cacheStride, size_t d,
                                 float *output, size_t outputStride) {
    __m256 even[8], odd[8];
    for (int g = 0; g < width; g++) {
        even[g] = _mm256_setzero_ps();
        odd[g] = _mm256_setzero_ps();
    }
    size_t p = 0;
    if (width <= 4) {
        for (; p + 2 <= positions; p += 2) {
            const __m256 v0 = load_cache8(values, p * cacheStride + d, halfCache);
            const __m256 v1 = load_cache8(values, (p + 1) * cacheStride + d, halfCache);
            for (int g = 0; g < width; g++) {
                even[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + g * positions + p), v0, even[g]);
                odd[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + g * positions + p + 1), v1, odd[g]);
            }
        }
    }
    for (; p < positions; p++) {
        const __m256 v = load_cache8(values, p * cacheStride + d, halfCache);
        for (int g = 0; g < width; g++) {
            even[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + g * positions + p), v, even[g]);
        }
    }
    for (int g = 0; g < width; g++) _mm256_storeu_ps(output + g * outputStride + d, _mm256_add_ps(even[g], odd[g]));
}
#endif

/// Replaces one row of scores by exp(score - max) and returns (max, sum).
static void exponentiate(float *scores, size_t count, float *maximum, float *sum) {
    float m = -INFINITY;
    for (size_t i = 0; i < count; i++) m = scores[i] > m ? scores[i] : m;
    size_t i = 0;
    float total = 0;
#if CK_AVX2
    const __m256 shift = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= count; i += 8) {
        const __m256 e = ck_exp8(_mm256_sub_ps(_mm256_loadu_ps(scores + i), shift));
        _mm256_storeu_ps(scores + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    total = ck_hsum(acc);
#endif
    for (; i < count; i++) {
        const float e = expf(scores[i] - m);
        scores[i] = e;
        total += e;
    }
    *maximum = m;
    *sum = total;
}

void ck_attention_group(const float *queries, size_t queryStride, size_t groupSize,
                        const void *keys, const void *values, int halfCache, size_t cacheStride,
                        size_t headDim, size_t positions, float scale, float *scores,
                        float *output, size_t outputStride, float *maxima, float *sums) {
    compute_scores(queries, queryStride, groupSize, keys, halfCache, cacheStride, headDim, positions, scale, scores);

    for (size_t g = 0; g < groupSize; g++) {
        float *row = scores + g * positions;
        float maximum, sum;
        exponentiate(row, positions, &maximum, &sum);
        if (maxima) {
            maxima[g] = maximum;
            sums[g] = sum;
        } else {
            // Fold the normalization into the weights of the value sum.
            const float inverse = 1.0f / sum;
            for (size_t p = 0; p < positions; p++) row[p] *= inverse;
        }
    }

    // output[g] = sum over p of weight[g][p] * value[p].
    size_t d = 0;
#if CK_AVX2
    for (; d + 8 <= headDim; d += 8) {
        for (size_t g = 0; g < groupSize; g += 8) {
            const float *weights = scores + g * positions;
            float *out = output + g * outputStride;
            switch (groupSize - g < 8 ? groupSize - g : 8) {
            case 1: accumulate_values(1, weights, positions, values, halfCache, cacheStride, d, out, outputStride); break;
            case 2: accumulate_values(2, weights, positions, values, halfCache, cacheStride, d, out, outputStride); break;
            case 3: accumulate_values(3, weights, positions, values, halfCache, cacheStride, d, out, outputStride); break;
            case 4: accumulate_values(4, weights, positions, values, halfCache, cacheStride, d, out, outputStride); break;
            case 5: accumulate_values(5, weights, positions, values, halfCache, cacheStride, d, out, outputStride); break;
            case 6: accumulate_values(6, weights, positions, values, halfCache, cacheStride, d, out, outputStride); break;
            case 7: accumulate_values(7, weights, positions, values, halfCache, cacheStride, d, out, outputStride); break;
            default: accumulate_values(8, weights, positions, values, halfCache, cacheStride, d, out, outputStride); break;
            }
        }
    }
#endif
    for (; d < headDim; d++) {
        for (size_t g = 0; g < groupSize; g++) {
            const float *w = scores + g * positions;
            float a = 0;
            for (size_t p = 0; p < positions; p++) a += w[p] * load_cache(values, p * cacheStride + d, halfCache);
            output[g * outputStride + d] = a;
        }
    }
}
