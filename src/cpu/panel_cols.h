/* One level's kernel for panel.c, which includes this file once per level
 * with PANEL_NAME (the function), PANEL_VEC (a vector type of PANEL_VW
 * floats, the level's register width), PANEL_MR (tile rows) and
 * PANEL_TARGET (a function attribute, or nothing) defined.
 *
 * Columns [n0, n0 + w) of C (M, N) += A (M, K) x panel wp (K, SYN_PANEL_NR):
 * tiles of PANEL_MR rows x SYN_PANEL_NR columns kept in registers through
 * the whole K loop. The last group of rows repeats row 0 for its missing
 * rows and drops their results. */
#define PANEL_NV (SYN_PANEL_NR / PANEL_VW)

PANEL_TARGET static void PANEL_NAME(int64_t M, int64_t K, const float *A, int64_t lda, const float *wp, float *C,
                                    int64_t ldc, int64_t n0, int64_t w) {
    for (int64_t i = 0; i < M; i += PANEL_MR) {
        int rows = M - i < PANEL_MR ? (int)(M - i) : PANEL_MR;
        const float *a[PANEL_MR];
        for (int r = 0; r < PANEL_MR; r++) a[r] = A + (r < rows ? i + r : i) * lda;
        PANEL_VEC acc[PANEL_MR][PANEL_NV];
        for (int r = 0; r < PANEL_MR; r++)
            for (int v = 0; v < PANEL_NV; v++) acc[r][v] = (PANEL_VEC){0};
        for (int64_t k = 0; k < K; k++) {
            PANEL_VEC b[PANEL_NV];
#pragma GCC unroll 8
            for (int v = 0; v < PANEL_NV; v++) b[v] = *(const PANEL_VEC *)(wp + k * SYN_PANEL_NR + v * PANEL_VW);
#pragma GCC unroll 8
            for (int r = 0; r < PANEL_MR; r++) {
                float s = a[r][k];
#pragma GCC unroll 8
                for (int v = 0; v < PANEL_NV; v++) acc[r][v] += s * b[v];
            }
        }
        float tile[PANEL_MR * SYN_PANEL_NR];
        for (int r = 0; r < PANEL_MR; r++)
            for (int v = 0; v < PANEL_NV; v++) *(PANEL_VEC *)(tile + r * SYN_PANEL_NR + v * PANEL_VW) = acc[r][v];
        for (int r = 0; r < rows; r++) {
            float *c = C + (i + r) * ldc + n0;
            const float *t = tile + r * SYN_PANEL_NR;
            for (int64_t j = 0; j < w; j++) c[j] += t[j];
        }
    }
}

#undef PANEL_NV
#undef PANEL_NAME
#undef PANEL_VEC
#undef PANEL_VW
#undef PANEL_MR
#undef PANEL_TARGET
