/* e^x, tanh and the logistic sigmoid for the CPU kernels' hot loops, written
 * branch-free so that GCC vectorises the loops that call them (glibc's expf and
 * tanhf are calls, which keep a loop scalar: tanhf, through expm1f, was 8% of a
 * char-LSTM step). Cephes' polynomials; within 3 ulp of the exact value over
 * the float range (tests/test_ops.c sweeps them against double precision).
 * NaN in gives NaN out; infinities give the limits. */
#ifndef SYN_CPU_VMATH_H
#define SYN_CPU_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^x, with gradual underflow below e^-87.3 and infinity above e^88.7. */
static inline float syn__vexpf(float x) {
    /* comparisons, not fmaxf: NaN passes */
    x = x > 89.0f ? 89.0f : x;
    x = x < -104.0f ? -104.0f : x;
    /* x = n ln2 + r, |r| <= ln2 / 2; ln2 in two parts keeps r exact */
    float n = rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * r * r + r + 1.0f;
    /* times 2^n as 2^h 2^(n-h), h = n/2: n is in [-150, 128], beyond a
     * normal float's exponents, the halves are not; the product rounds to a
     * denormal, 0 or infinity as e^x does. For a NaN x, n = 0 (e carries
     * the NaN). */
    int32_t ni = n == n ? (int32_t)n : 0, h = ni / 2;
    int32_t b1 = (h + 127) * (1 << 23), b2 = (ni - h + 127) * (1 << 23);
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return e * s1 * s2;
}

/* tanh x: an odd polynomial below |x| 0.625, 1 - 2 / (e^2|x| + 1) above
 * (no cancellation there: the result is over 0.55). */
static inline float syn__vtanhf(float x) {
    float a = fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * a + a;
    float big = 1.0f - 2.0f / (syn__vexpf(2.0f * a) + 1.0f);
    return copysignf(a < 0.625f ? small : big, x);
}

/* 1 / (1 + e^-x) */
static inline float syn__vsigmoidf(float x) { return 1.0f / (1.0f + syn__vexpf(-x)); }

#endif
