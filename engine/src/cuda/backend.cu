// The CUDA backend of the engine: librb_cuda.so, dlopen'ed by backend-cuda.c.
//
// Every kernel is a thin loop around the `__host__ __device__` functions of
// quant-block.h and ops-block.h — the same functions the CPU tests check against the
// CPU engine on every fixture model — so what differs from the CPU path is only the
// launch geometry and the reductions, which are kept simple and documented at each
// kernel with their invariants. Every CUDA runtime/cuBLAS call goes through
// RB_CUDA_CHECK / RB_CUBLAS_CHECK, which record "file:line: call: error" in the
// context and return a status (cudaErrorMemoryAllocation -> RB_ERR_NOMEM).

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <new>

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "ragbox/status.h"
}
// quant-block.h is C11 and states its block sizes with _Static_assert.
#define _Static_assert static_assert
#include "../cuda-api.h"
#include "../ggml-types.h"
#include "../ops-block.h"
#include "../quant-block.h"

struct rb_cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    cudaGraph_t graph;
    cudaGraphExec_t graph_exec;
    bool capturing;
    // Scratch for activation quantization and fp16 GEMM tiles, grown on demand
    // (never while capturing a graph: sizes must be reserved by a warm-up call).
    void *act;
    size_t act_bytes;
    void *tile;
    size_t tile_bytes;
    char err[512];
};

static int set_error(rb_cuda_ctx *ctx, int status, const char *fmt, ...)
{
    if (ctx) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
        va_end(ap);
    }
    return status;
}

#define RB_CUDA_CHECK(ctx, call)                                                                   \
    do {                                                                                           \
        cudaError_t rb_e_ = (call);                                                                \
        if (rb_e_ != cudaSuccess)                                                                  \
            return set_error((ctx),                                                                \
                             rb_e_ == cudaErrorMemoryAllocation ? RB_ERR_NOMEM : RB_ERR_INTERNAL,  \
                             "%s:%d: %s: %s", __FILE__, __LINE__, #call,                          \
                             cudaGetErrorString(rb_e_));                                           \
    } while (0)

#define RB_CUBLAS_CHECK(ctx, call)                                                                 \
    do {                                                                                           \
        cublasStatus_t rb_s_ = (call);                                                             \
        if (rb_s_ != CUBLAS_STATUS_SUCCESS)                                                        \
            return set_error((ctx),                                                                \
                             rb_s_ == CUBLAS_STATUS_ALLOC_FAILED ? RB_ERR_NOMEM : RB_ERR_INTERNAL, \
                             "%s:%d: %s: cuBLAS status %d", __FILE__, __LINE__, #call,             \
                             (int)rb_s_);                                                          \
    } while (0)

// Checks the launch of the kernel just enqueued.
#define RB_CUDA_LAUNCHED(ctx) RB_CUDA_CHECK(ctx, cudaGetLastError())

static inline unsigned blocks_for(int64_t n, int per)
{
    return (unsigned)((n + per - 1) / per);
}

// =============================================================== type traits
// For each weight type: its block struct, the activation block struct it dots
// against (ggml's vec_dot_type), the elements per block, and the device wrappers
// around quant-block.h's functions.

template <int TYPE> struct qtraits;

#define RB_QTRAITS(TYPE, WB, AB, QK, PARTIAL, DEQ, QACT)                                           \
    template <> struct qtraits<TYPE> {                                                             \
        typedef WB wblock;                                                                         \
        typedef AB ablock;                                                                         \
        static const int qk = QK;                                                                  \
        static __device__ float partial(const WB *w, const AB *a, int64_t nb, int lane)            \
        {                                                                                          \
            return PARTIAL(w, a, nb, lane, RB_WARP);                                               \
        }                                                                                          \
        static __device__ void dequant(const WB *w, float *y) { DEQ(w, y); }                       \
        static __device__ void quant_act(const float *x, AB *a) { QACT(x, a); }                    \
    };

RB_QTRAITS(RB_GGML_TYPE_Q8_0, rb_block_q8_0, rb_block_q8_0, RB_QB, rb_op_mv_q8_0,
           rb_dequant_q8_0, rb_quant_q8_0)
RB_QTRAITS(RB_GGML_TYPE_Q4_0, rb_block_q4_0, rb_block_q8_0, RB_QB, rb_op_mv_q4_0,
           rb_dequant_q4_0, rb_quant_q8_0)
RB_QTRAITS(RB_GGML_TYPE_Q4_1, rb_block_q4_1, rb_block_q8_1, RB_QB, rb_op_mv_q4_1,
           rb_dequant_q4_1, rb_quant_q8_1)
RB_QTRAITS(RB_GGML_TYPE_Q5_0, rb_block_q5_0, rb_block_q8_0, RB_QB, rb_op_mv_q5_0,
           rb_dequant_q5_0, rb_quant_q8_0)
RB_QTRAITS(RB_GGML_TYPE_Q4_K, rb_block_q4_k, rb_block_q8_k, RB_QBK, rb_op_mv_q4_k,
           rb_dequant_q4_k, rb_quant_q8_k)
RB_QTRAITS(RB_GGML_TYPE_Q5_K, rb_block_q5_k, rb_block_q8_k, RB_QBK, rb_op_mv_q5_k,
           rb_dequant_q5_k, rb_quant_q8_k)
RB_QTRAITS(RB_GGML_TYPE_Q6_K, rb_block_q6_k, rb_block_q8_k, RB_QBK, rb_op_mv_q6_k,
           rb_dequant_q6_k, rb_quant_q8_k)

// ================================================================ reductions

// Sum over a warp. Invariant: all 32 lanes are active.
static __device__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over a thread block of blockDim.x (a multiple of 32, <= 1024) threads; every
// thread gets the total. `shared` holds 32 floats.
static __device__ float block_sum(float v, float *shared)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); // shared may still be read by a previous call
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    v = lane < nwarps ? shared[lane] : 0.0f;
    return warp_sum(v);
}

// ================================================================ activations

// One thread per activation block: x (n_tok, cols) floats -> blocks of T's
// activation type. Invariant: cols % qk == 0 (checked on the host).
template <int T>
__global__ void k_quant_act(const float *x, typename qtraits<T>::ablock *a, int64_t nblocks)
{
    int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (b < nblocks)
        qtraits<T>::quant_act(x + b * qtraits<T>::qk, a + b);
}

__global__ void k_to_f16(const float *x, rb_half *y, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = rb_fp32_to_fp16(x[i]);
}

__global__ void k_to_bf16(const float *x, rb_bf16 *y, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = rb_fp32_to_bf16(x[i]);
}

// =================================================================== matvec
// Geometry: one warp per output row; blockDim = (32, MV_WARPS); grid = (ceil(rows /
// MV_WARPS), n_tok). Lane l takes weight blocks l, l+32, ...; the warp sum is the row's
// dot product. Invariants: cols % qk == 0; the activation row t starts at block
// t * (cols / qk).
#define MV_WARPS 4

template <int T>
__global__ void k_matvec_q(const typename qtraits<T>::wblock *w, const typename qtraits<T>::ablock *a,
                           int64_t rows, int64_t nb, float *y)
{
    int64_t row = (int64_t)blockIdx.x * MV_WARPS + threadIdx.y;
    int t = blockIdx.y;
    if (row >= rows)
        return; // whole warp exits together: row depends only on threadIdx.y
    const typename qtraits<T>::wblock *wr = w + row * nb;
    const typename qtraits<T>::ablock *ar = a + (int64_t)t * nb;
    float s = warp_sum(qtraits<T>::partial(wr, ar, nb, threadIdx.x));
    if (threadIdx.x == 0)
        y[(int64_t)t * rows + row] = s;
}

__global__ void k_matvec_f32(const float *w, const float *x, int64_t rows, int64_t cols, float *y)
{
    int64_t row = (int64_t)blockIdx.x * MV_WARPS + threadIdx.y;
    int t = blockIdx.y;
    if (row >= rows)
        return;
    float s = rb_op_dot_f32(w + row * cols, x + (int64_t)t * cols, threadIdx.x, (int)cols, 32);
    s = warp_sum(s);
    if (threadIdx.x == 0)
        y[(int64_t)t * rows + row] = s;
}

__global__ void k_matvec_f16(const rb_half *w, const rb_half *x, int64_t rows, int64_t cols,
                             float *y)
{
    int64_t row = (int64_t)blockIdx.x * MV_WARPS + threadIdx.y;
    int t = blockIdx.y;
    if (row >= rows)
        return;
    float s = rb_op_dot_f16(w + row * cols, x + (int64_t)t * cols, threadIdx.x, (int)cols, 32);
    s = warp_sum(s);
    if (threadIdx.x == 0)
        y[(int64_t)t * rows + row] = s;
}

__global__ void k_matvec_bf16(const rb_bf16 *w, const rb_bf16 *x, int64_t rows, int64_t cols,
                              float *y)
{
    int64_t row = (int64_t)blockIdx.x * MV_WARPS + threadIdx.y;
    int t = blockIdx.y;
    if (row >= rows)
        return;
    float s = rb_op_dot_bf16(w + row * cols, x + (int64_t)t * cols, threadIdx.x, (int)cols, 32);
    s = warp_sum(s);
    if (threadIdx.x == 0)
        y[(int64_t)t * rows + row] = s;
}

// ================================================================ dequantize
// One thread per weight block, written as fp16 (GEMM tiles) or fp32 (get_rows).
template <int T>
__global__ void k_dequant_f16(const typename qtraits<T>::wblock *w, rb_half *y, int64_t nblocks)
{
    int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= nblocks)
        return;
    float tmp[RB_QBK];
    qtraits<T>::dequant(w + b, tmp);
    for (int i = 0; i < qtraits<T>::qk; i++)
        y[b * qtraits<T>::qk + i] = rb_fp32_to_fp16(tmp[i]);
}

__global__ void k_f32_to_f16(const float *w, rb_half *y, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = rb_fp32_to_fp16(w[i]);
}

__global__ void k_bf16_to_f16(const rb_bf16 *w, rb_half *y, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = rb_fp32_to_fp16(rb_bf16_to_fp32(w[i]));
}

// get_rows: one thread per (token, block of the row).
template <int T>
__global__ void k_get_rows_q(const typename qtraits<T>::wblock *w, const int32_t *ids, int n,
                             int64_t nb, float *out)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n * nb)
        return;
    int64_t t = i / nb, b = i % nb;
    qtraits<T>::dequant(w + (int64_t)ids[t] * nb + b, out + t * nb * qtraits<T>::qk + b * qtraits<T>::qk);
}

__global__ void k_get_rows_plain(const void *w, uint32_t type, const int32_t *ids, int n,
                                 int64_t cols, float *out)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n * cols)
        return;
    int64_t t = i / cols, c = i % cols, src = (int64_t)ids[t] * cols + c;
    float v;
    if (type == RB_GGML_TYPE_F32)
        v = ((const float *)w)[src];
    else if (type == RB_GGML_TYPE_F16)
        v = rb_fp16_to_fp32(((const rb_half *)w)[src]);
    else
        v = rb_bf16_to_fp32(((const rb_bf16 *)w)[src]);
    out[i] = v;
}

// ===================================================================== norms
// One thread block of NORM_THREADS per row; each thread takes the strided slice
// tid, tid + NORM_THREADS, ...; block_sum combines the partial sums.
#define NORM_THREADS 256

__global__ void k_rmsnorm(const float *x, const float *w, float *y, int n, float eps)
{
    __shared__ float shared[32];
    const float *xr = x + (int64_t)blockIdx.x * n;
    float *yr = y + (int64_t)blockIdx.x * n;
    float ss = block_sum(rb_op_sumsq(xr, threadIdx.x, n, blockDim.x), shared);
    rb_op_rmsnorm_apply(xr, w, rb_op_rms_scale(ss, n, eps), yr, threadIdx.x, n, blockDim.x);
}

__global__ void k_layernorm(const float *x, const float *w, const float *b, float *y, int n,
                            float eps)
{
    __shared__ float shared[32];
    const float *xr = x + (int64_t)blockIdx.x * n;
    float *yr = y + (int64_t)blockIdx.x * n;
    float mean = block_sum(rb_op_sum(xr, threadIdx.x, n, blockDim.x), shared) / (float)n;
    float var = block_sum(rb_op_sumsq_centered(xr, mean, threadIdx.x, n, blockDim.x), shared) /
                (float)n;
    rb_op_layernorm_apply(xr, w, b, mean, 1.0f / sqrtf(var + eps), yr, threadIdx.x, n,
                          blockDim.x);
}

// ====================================================================== RoPE
// One thread per (row, head, pair); pairs touch disjoint elements.
__global__ void k_rope(float *x, const int32_t *pos, int rows, int n_head, int head_dim, int n_rot,
                       int mode, float base, float scale, const float *factors)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int pairs = n_rot / 2;
    if (i >= (int64_t)rows * n_head * pairs)
        return;
    int p = (int)(i % pairs);
    int64_t rh = i / pairs; // row * n_head + head
    int row = (int)(rh / n_head);
    rb_op_rope_pair(x + rh * head_dim, p, n_rot, mode,
                    rb_op_rope_theta(pos[row], p, n_rot, base, scale, factors ? factors[p] : 1.0f));
}

// =================================================================== softmax
// One block per row: per-thread online states over strided slices, merged through
// shared memory by thread 0 (NORM_THREADS states), then every thread normalises.
__global__ void k_softmax(float *x, int n)
{
    __shared__ rb_op_softmax_state states[NORM_THREADS];
    __shared__ rb_op_softmax_state total;
    float *xr = x + (int64_t)blockIdx.x * n;
    rb_op_softmax_state st = rb_op_softmax_init();
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        rb_op_softmax_push(&st, xr[i]);
    states[threadIdx.x] = st;
    __syncthreads();
    if (threadIdx.x == 0) {
        rb_op_softmax_state acc = rb_op_softmax_init();
        for (unsigned i = 0; i < blockDim.x; i++)
            acc = rb_op_softmax_merge(acc, states[i]);
        total = acc;
    }
    __syncthreads();
    float inv = 1.0f / total.l;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        xr[i] = expf(xr[i] - total.m) * inv;
}

// =============================================================== elementwise
__global__ void k_swiglu(const float *g, const float *u, float *out, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = rb_op_swiglu(g[i], u[i]);
}

__global__ void k_gelu(float *x, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] = rb_gelu(x[i]);
}

__global__ void k_add(float *y, const float *x, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] += x[i];
}

__global__ void k_add_bias(float *y, const float *bias, int rows, int n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (int64_t)rows * n)
        y[i] += bias[i % n];
}

// ========================================================= paged KV + attention
// kv_store: one thread per (token, element); slot[t] = page * PAGE + offset.
__global__ void k_kv_store(rb_half *kp, rb_half *vp, const float *k, const float *v,
                           const int32_t *slot, int n, int kv_row)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n * kv_row)
        return;
    int64_t t = i / kv_row, e = i % kv_row;
    int64_t dst = (int64_t)slot[t] * kv_row + e;
    kp[dst] = rb_fp32_to_fp16(k[i]);
    vp[dst] = rb_fp32_to_fp16(v[i]);
}

// attention: grid (n_q, n_head), one warp per (query, head). Lane l folds pages
// l, l+32, ... of the query's page table with rb_op_attn_block (each page's keys in
// order), keeping its own online-softmax state and accumulator (head_dim <=
// RB_ATTN_MAX_HEAD_DIM, in local memory). The 32 lane states are then written to
// shared memory and lane 0 merges them with rb_op_attn_merge in lane order —
// disjoint key sets, so the result is the softmax over all visible keys.
#define RB_ATTN_MAX_HEAD_DIM 256

__global__ void k_attention(rb_cuda_attn_args a)
{
    extern __shared__ float sh[]; // RB_WARP records of (2 + head_dim) floats
    int q = blockIdx.x, h = blockIdx.y, lane = threadIdx.x;
    int kvh = h / (a.n_head / a.n_kv_head); // grouped-query attention
    int kv_stride = a.n_kv_head * a.head_dim;
    const float *qv = a.q + ((int64_t)q * a.n_head + h) * a.head_dim;
    float acc[RB_ATTN_MAX_HEAD_DIM];
    for (int d = 0; d < a.head_dim; d++)
        acc[d] = 0.0f;
    rb_op_softmax_state st = rb_op_softmax_init();
    rb_op_attn_lane(qv, (const rb_half *)a.k_pages, (const rb_half *)a.v_pages,
                    a.page_table + (int64_t)q * a.max_pages, a.n_keys[q], RB_CUDA_PAGE_TOKENS,
                    kv_stride, kvh * a.head_dim, a.head_dim, a.scale, lane, RB_WARP, &st, acc);
    float *mine = sh + lane * (2 + a.head_dim);
    mine[0] = st.m;
    mine[1] = st.l;
    for (int d = 0; d < a.head_dim; d++)
        mine[2 + d] = acc[d];
    __syncwarp();
    if (lane == 0)
        rb_op_attn_merge_lanes(sh, RB_WARP, a.head_dim, acc,
                               a.out + ((int64_t)q * a.n_head + h) * a.head_dim);
}

// ================================================================== the API

static int api_device_count(char *err, size_t err_len)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (err && err_len)
            snprintf(err, err_len, "no usable CUDA device: %s", cudaGetErrorString(e));
        return 0;
    }
    if (n == 0 && err && err_len)
        snprintf(err, err_len, "the CUDA runtime sees no device");
    return n;
}

static int api_device_info(int device, rb_cuda_device_info *out)
{
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess)
        return RB_ERR_NOT_FOUND;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", prop.name);
    out->total_bytes = prop.totalGlobalMem;
    out->cc_major = prop.major;
    out->cc_minor = prop.minor;
    out->multiprocessors = prop.multiProcessorCount;
    int prev = 0;
    if (cudaGetDevice(&prev) == cudaSuccess && cudaSetDevice(device) == cudaSuccess) {
        size_t fr = 0, tot = 0;
        if (cudaMemGetInfo(&fr, &tot) == cudaSuccess)
            out->free_bytes = fr;
        (void)cudaSetDevice(prev);
    }
    return RB_OK;
}

static void api_ctx_free(rb_cuda_ctx *ctx)
{
    if (!ctx)
        return;
    cudaSetDevice(ctx->device);
    if (ctx->graph_exec)
        cudaGraphExecDestroy(ctx->graph_exec);
    if (ctx->graph)
        cudaGraphDestroy(ctx->graph);
    if (ctx->act)
        cudaFree(ctx->act);
    if (ctx->tile)
        cudaFree(ctx->tile);
    if (ctx->blas)
        cublasDestroy(ctx->blas);
    if (ctx->stream)
        cudaStreamDestroy(ctx->stream);
    delete ctx;
}

static int ctx_init(rb_cuda_ctx *ctx, int device)
{
    RB_CUDA_CHECK(ctx, cudaSetDevice(device));
    RB_CUDA_CHECK(ctx, cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    RB_CUBLAS_CHECK(ctx, cublasCreate(&ctx->blas));
    RB_CUBLAS_CHECK(ctx, cublasSetStream(ctx->blas, ctx->stream));
    RB_CUBLAS_CHECK(ctx, cublasSetMathMode(ctx->blas, CUBLAS_DEFAULT_MATH));
    return RB_OK;
}

static int api_ctx_create(int device, rb_cuda_ctx **out, char *err, size_t err_len)
{
    *out = nullptr;
    rb_cuda_ctx *ctx = new (std::nothrow) rb_cuda_ctx();
    if (!ctx)
        return RB_ERR_NOMEM;
    ctx->device = device;
    int st = ctx_init(ctx, device);
    if (st != RB_OK) {
        if (err && err_len)
            snprintf(err, err_len, "%s", ctx->err);
        api_ctx_free(ctx);
        return st;
    }
    *out = ctx;
    return RB_OK;
}

static const char *api_last_error(const rb_cuda_ctx *ctx)
{
    return ctx ? ctx->err : "no CUDA context";
}

static int api_alloc(rb_cuda_ctx *ctx, size_t bytes, void **out)
{
    *out = nullptr;
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError(); // clear the sticky-less error
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        return set_error(ctx, RB_ERR_NOMEM,
                         "GPU out of memory: %zu bytes requested, %zu of %zu free on device %d",
                         bytes, fr, tot, ctx->device);
    }
    RB_CUDA_CHECK(ctx, e);
    return RB_OK;
}

static void api_free(rb_cuda_ctx *ctx, void *ptr)
{
    (void)ctx;
    if (ptr)
        cudaFree(ptr);
}

static int api_upload(rb_cuda_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    RB_CUDA_CHECK(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream));
    RB_CUDA_CHECK(ctx, cudaStreamSynchronize(ctx->stream));
    return RB_OK;
}

static int api_download(rb_cuda_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    RB_CUDA_CHECK(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream));
    RB_CUDA_CHECK(ctx, cudaStreamSynchronize(ctx->stream));
    return RB_OK;
}

static int api_synchronize(rb_cuda_ctx *ctx)
{
    RB_CUDA_CHECK(ctx, cudaStreamSynchronize(ctx->stream));
    return RB_OK;
}

// Grows a scratch buffer; refused while capturing (allocation is not capturable).
static int scratch(rb_cuda_ctx *ctx, void **buf, size_t *have, size_t need)
{
    if (*have >= need)
        return RB_OK;
    if (ctx->capturing)
        return set_error(ctx, RB_ERR_INTERNAL,
                         "scratch buffer must grow to %zu bytes during graph capture: run the "
                         "step once before capturing",
                         need);
    if (*buf)
        RB_CUDA_CHECK(ctx, cudaFree(*buf));
    *buf = nullptr;
    *have = 0;
    int st = api_alloc(ctx, need, buf);
    if (st == RB_OK)
        *have = need;
    return st;
}

template <int T>
static int matvec_q(rb_cuda_ctx *ctx, const void *w, int64_t rows, int64_t cols, const float *x,
                    int n_tok, float *y)
{
    typedef qtraits<T> Q;
    if (cols % Q::qk != 0)
        return set_error(ctx, RB_ERR_INVALID, "matvec: %lld columns is not a multiple of %d",
                         (long long)cols, Q::qk);
    int64_t nb = cols / Q::qk, nab = nb * n_tok;
    int st = scratch(ctx, &ctx->act, &ctx->act_bytes, (size_t)nab * sizeof(typename Q::ablock));
    if (st != RB_OK)
        return st;
    typename Q::ablock *a = (typename Q::ablock *)ctx->act;
    k_quant_act<T><<<blocks_for(nab, 128), 128, 0, ctx->stream>>>(x, a, nab);
    RB_CUDA_LAUNCHED(ctx);
    dim3 grid(blocks_for(rows, MV_WARPS), n_tok), block(32, MV_WARPS);
    k_matvec_q<T><<<grid, block, 0, ctx->stream>>>((const typename Q::wblock *)w, a, rows, nb, y);
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_matvec(rb_cuda_ctx *ctx, uint32_t type, const void *w, int64_t rows, int64_t cols,
                      const float *x, int n_tok, float *y)
{
    if (n_tok <= 0 || n_tok > 65535 || rows <= 0 || cols <= 0)
        return set_error(ctx, RB_ERR_INVALID, "matvec: bad shape rows=%lld cols=%lld n_tok=%d",
                         (long long)rows, (long long)cols, n_tok);
    dim3 grid(blocks_for(rows, MV_WARPS), n_tok), block(32, MV_WARPS);
    int64_t n = cols * n_tok;
    switch (type) {
    case RB_GGML_TYPE_F32:
        k_matvec_f32<<<grid, block, 0, ctx->stream>>>((const float *)w, x, rows, cols, y);
        RB_CUDA_LAUNCHED(ctx);
        return RB_OK;
    case RB_GGML_TYPE_F16:
    case RB_GGML_TYPE_BF16: {
        int st = scratch(ctx, &ctx->act, &ctx->act_bytes, (size_t)n * 2);
        if (st != RB_OK)
            return st;
        if (type == RB_GGML_TYPE_F16) {
            k_to_f16<<<blocks_for(n, 256), 256, 0, ctx->stream>>>(x, (rb_half *)ctx->act, n);
            RB_CUDA_LAUNCHED(ctx);
            k_matvec_f16<<<grid, block, 0, ctx->stream>>>((const rb_half *)w,
                                                          (const rb_half *)ctx->act, rows, cols, y);
        } else {
            k_to_bf16<<<blocks_for(n, 256), 256, 0, ctx->stream>>>(x, (rb_bf16 *)ctx->act, n);
            RB_CUDA_LAUNCHED(ctx);
            k_matvec_bf16<<<grid, block, 0, ctx->stream>>>((const rb_bf16 *)w,
                                                           (const rb_bf16 *)ctx->act, rows, cols, y);
        }
        RB_CUDA_LAUNCHED(ctx);
        return RB_OK;
    }
    case RB_GGML_TYPE_Q8_0:
        return matvec_q<RB_GGML_TYPE_Q8_0>(ctx, w, rows, cols, x, n_tok, y);
    case RB_GGML_TYPE_Q4_0:
        return matvec_q<RB_GGML_TYPE_Q4_0>(ctx, w, rows, cols, x, n_tok, y);
    case RB_GGML_TYPE_Q4_1:
        return matvec_q<RB_GGML_TYPE_Q4_1>(ctx, w, rows, cols, x, n_tok, y);
    case RB_GGML_TYPE_Q5_0:
        return matvec_q<RB_GGML_TYPE_Q5_0>(ctx, w, rows, cols, x, n_tok, y);
    case RB_GGML_TYPE_Q4_K:
        return matvec_q<RB_GGML_TYPE_Q4_K>(ctx, w, rows, cols, x, n_tok, y);
    case RB_GGML_TYPE_Q5_K:
        return matvec_q<RB_GGML_TYPE_Q5_K>(ctx, w, rows, cols, x, n_tok, y);
    case RB_GGML_TYPE_Q6_K:
        return matvec_q<RB_GGML_TYPE_Q6_K>(ctx, w, rows, cols, x, n_tok, y);
    default:
        return set_error(ctx, RB_ERR_UNSUPPORTED, "matvec: tensor type %u is not supported on CUDA",
                         type);
    }
}

// Elements per block of the types this backend computes (0: not supported). The
// library carries its own table so it needs no symbol from the engine.
static int block_elems(uint32_t type)
{
    switch (type) {
    case RB_GGML_TYPE_F32:
    case RB_GGML_TYPE_F16:
    case RB_GGML_TYPE_BF16:
        return 1;
    case RB_GGML_TYPE_Q8_0:
    case RB_GGML_TYPE_Q4_0:
    case RB_GGML_TYPE_Q4_1:
    case RB_GGML_TYPE_Q5_0:
        return RB_QB;
    case RB_GGML_TYPE_Q4_K:
    case RB_GGML_TYPE_Q5_K:
    case RB_GGML_TYPE_Q6_K:
        return RB_QBK;
    default:
        return 0;
    }
}

// Dequantises rows [r0, r0 + nr) of W to fp16 in `tile` (nr * cols halves).
static int dequant_rows_f16(rb_cuda_ctx *ctx, uint32_t type, const void *w, int64_t r0, int64_t nr,
                            int64_t cols, rb_half *tile)
{
    int64_t n = nr * cols;
#define RB_DEQ_CASE(T)                                                                             \
    case T: {                                                                                      \
        typedef qtraits<T> Q;                                                                      \
        int64_t nb = n / Q::qk;                                                                    \
        const typename Q::wblock *src = (const typename Q::wblock *)w + r0 * (cols / Q::qk);       \
        k_dequant_f16<T><<<blocks_for(nb, 64), 64, 0, ctx->stream>>>(src, tile, nb);               \
        break;                                                                                     \
    }
    switch (type) {
    case RB_GGML_TYPE_F32:
        k_f32_to_f16<<<blocks_for(n, 256), 256, 0, ctx->stream>>>((const float *)w + r0 * cols,
                                                                   tile, n);
        break;
    case RB_GGML_TYPE_F16:
        RB_CUDA_CHECK(ctx, cudaMemcpyAsync(tile, (const rb_half *)w + r0 * cols, (size_t)n * 2,
                                           cudaMemcpyDeviceToDevice, ctx->stream));
        break;
    case RB_GGML_TYPE_BF16:
        k_bf16_to_f16<<<blocks_for(n, 256), 256, 0, ctx->stream>>>((const rb_bf16 *)w + r0 * cols,
                                                                    tile, n);
        break;
        RB_DEQ_CASE(RB_GGML_TYPE_Q8_0)
        RB_DEQ_CASE(RB_GGML_TYPE_Q4_0)
        RB_DEQ_CASE(RB_GGML_TYPE_Q4_1)
        RB_DEQ_CASE(RB_GGML_TYPE_Q5_0)
        RB_DEQ_CASE(RB_GGML_TYPE_Q4_K)
        RB_DEQ_CASE(RB_GGML_TYPE_Q5_K)
        RB_DEQ_CASE(RB_GGML_TYPE_Q6_K)
    default:
        return set_error(ctx, RB_ERR_UNSUPPORTED, "gemm: tensor type %u is not supported on CUDA",
                         type);
    }
#undef RB_DEQ_CASE
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

// Prefill GEMM: W rows are dequantised to fp16 in tiles of at most GEMM_TILE_ELEMS
// elements and multiplied with cuBLAS (tensor cores, fp32 accumulation):
// column-major Y(rows x n_tok) = W(rows x cols) * X(cols x n_tok), i.e. row-major
// y[t][r] = W[r] . x[t].
#define GEMM_TILE_ELEMS ((int64_t)32 << 20)

static int api_gemm(rb_cuda_ctx *ctx, uint32_t type, const void *w, int64_t rows, int64_t cols,
                    const float *x, int n_tok, float *y)
{
    if (n_tok <= 0 || rows <= 0 || cols <= 0 || cols > INT32_MAX || rows > INT32_MAX)
        return set_error(ctx, RB_ERR_INVALID, "gemm: bad shape");
    int qk = block_elems(type);
    if (qk == 0 || cols % qk != 0)
        return set_error(ctx, RB_ERR_INVALID, "gemm: type %u with %lld columns", type,
                         (long long)cols);
    int64_t tile_rows = GEMM_TILE_ELEMS / cols;
    if (tile_rows < 1)
        tile_rows = 1;
    if (tile_rows > rows)
        tile_rows = rows;
    size_t x_bytes = (size_t)cols * n_tok * 2;
    int st = scratch(ctx, &ctx->tile, &ctx->tile_bytes, (size_t)tile_rows * cols * 2 + x_bytes);
    if (st != RB_OK)
        return st;
    rb_half *xh = (rb_half *)ctx->tile;
    rb_half *wt = xh + (size_t)cols * n_tok;
    int64_t n = cols * n_tok;
    k_to_f16<<<blocks_for(n, 256), 256, 0, ctx->stream>>>(x, xh, n);
    RB_CUDA_LAUNCHED(ctx);
    const float alpha = 1.0f, beta = 0.0f;
    for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
        int64_t nr = rows - r0 < tile_rows ? rows - r0 : tile_rows;
        st = dequant_rows_f16(ctx, type, w, r0, nr, cols, wt);
        if (st != RB_OK)
            return st;
        RB_CUBLAS_CHECK(ctx, cublasGemmEx(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)nr, n_tok,
                                          (int)cols, &alpha, wt, CUDA_R_16F, (int)cols, xh,
                                          CUDA_R_16F, (int)cols, &beta, y + r0, CUDA_R_32F,
                                          (int)rows, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    return RB_OK;
}

static int api_get_rows(rb_cuda_ctx *ctx, uint32_t type, const void *w, int64_t cols,
                        const int32_t *ids, int n, float *out)
{
#define RB_ROWS_CASE(T)                                                                            \
    case T: {                                                                                      \
        int64_t nb = cols / qtraits<T>::qk;                                                        \
        k_get_rows_q<T><<<blocks_for(nb * n, 64), 64, 0, ctx->stream>>>(                           \
            (const typename qtraits<T>::wblock *)w, ids, n, nb, out);                              \
        break;                                                                                     \
    }
    switch (type) {
    case RB_GGML_TYPE_F32:
    case RB_GGML_TYPE_F16:
    case RB_GGML_TYPE_BF16:
        k_get_rows_plain<<<blocks_for(cols * n, 256), 256, 0, ctx->stream>>>(w, type, ids, n, cols,
                                                                               out);
        break;
        RB_ROWS_CASE(RB_GGML_TYPE_Q8_0)
        RB_ROWS_CASE(RB_GGML_TYPE_Q4_0)
        RB_ROWS_CASE(RB_GGML_TYPE_Q4_1)
        RB_ROWS_CASE(RB_GGML_TYPE_Q5_0)
        RB_ROWS_CASE(RB_GGML_TYPE_Q4_K)
        RB_ROWS_CASE(RB_GGML_TYPE_Q5_K)
        RB_ROWS_CASE(RB_GGML_TYPE_Q6_K)
    default:
        return set_error(ctx, RB_ERR_UNSUPPORTED, "get_rows: type %u not supported on CUDA", type);
    }
#undef RB_ROWS_CASE
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_rmsnorm(rb_cuda_ctx *ctx, const float *x, const float *w, float *y, int rows, int n,
                       float eps)
{
    k_rmsnorm<<<rows, NORM_THREADS, 0, ctx->stream>>>(x, w, y, n, eps);
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_layernorm(rb_cuda_ctx *ctx, const float *x, const float *w, const float *b, float *y,
                         int rows, int n, float eps)
{
    k_layernorm<<<rows, NORM_THREADS, 0, ctx->stream>>>(x, w, b, y, n, eps);
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_rope(rb_cuda_ctx *ctx, float *x, const int32_t *pos, int rows, int n_head,
                    int head_dim, int n_rot, int mode, float base, float scale,
                    const float *factors)
{
    if (n_rot > head_dim || n_rot % 2)
        return set_error(ctx, RB_ERR_INVALID, "rope: n_rot %d with head_dim %d", n_rot, head_dim);
    int64_t n = (int64_t)rows * n_head * (n_rot / 2);
    k_rope<<<blocks_for(n, 256), 256, 0, ctx->stream>>>(x, pos, rows, n_head, head_dim, n_rot, mode,
                                                        base, scale, factors);
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_softmax(rb_cuda_ctx *ctx, float *x, int rows, int n)
{
    k_softmax<<<rows, NORM_THREADS, 0, ctx->stream>>>(x, n);
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_swiglu(rb_cuda_ctx *ctx, const float *g, const float *u, float *out, int64_t n)
{
    k_swiglu<<<blocks_for(n, 256), 256, 0, ctx->stream>>>(g, u, out, n);
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_gelu(rb_cuda_ctx *ctx, float *x, int64_t n)
{
    k_gelu<<<blocks_for(n, 256), 256, 0, ctx->stream>>>(x, n);
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_add(rb_cuda_ctx *ctx, float *y, const float *x, int64_t n)
{
    k_add<<<blocks_for(n, 256), 256, 0, ctx->stream>>>(y, x, n);
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_add_bias(rb_cuda_ctx *ctx, float *y, const float *bias, int rows, int n)
{
    k_add_bias<<<blocks_for((int64_t)rows * n, 256), 256, 0, ctx->stream>>>(y, bias, rows, n);
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_kv_store(rb_cuda_ctx *ctx, uint16_t *kp, uint16_t *vp, const float *k,
                        const float *v, const int32_t *slot, int n, int kv_row)
{
    k_kv_store<<<blocks_for((int64_t)n * kv_row, 256), 256, 0, ctx->stream>>>(
        (rb_half *)kp, (rb_half *)vp, k, v, slot, n, kv_row);
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_attention(rb_cuda_ctx *ctx, const rb_cuda_attn_args *args)
{
    if (args->head_dim > RB_ATTN_MAX_HEAD_DIM || args->n_kv_head <= 0 ||
        args->n_head % args->n_kv_head != 0)
        return set_error(ctx, RB_ERR_UNSUPPORTED, "attention: head_dim %d / heads %d:%d",
                         args->head_dim, args->n_head, args->n_kv_head);
    dim3 grid(args->n_q, args->n_head);
    size_t shmem = 32 * (2 + (size_t)args->head_dim) * sizeof(float);
    k_attention<<<grid, 32, shmem, ctx->stream>>>(*args);
    RB_CUDA_LAUNCHED(ctx);
    return RB_OK;
}

static int api_graph_begin(rb_cuda_ctx *ctx)
{
    if (ctx->graph_exec) {
        RB_CUDA_CHECK(ctx, cudaGraphExecDestroy(ctx->graph_exec));
        ctx->graph_exec = nullptr;
    }
    if (ctx->graph) {
        RB_CUDA_CHECK(ctx, cudaGraphDestroy(ctx->graph));
        ctx->graph = nullptr;
    }
    RB_CUDA_CHECK(ctx, cudaStreamBeginCapture(ctx->stream, cudaStreamCaptureModeThreadLocal));
    ctx->capturing = true;
    return RB_OK;
}

static int api_graph_end(rb_cuda_ctx *ctx)
{
    ctx->capturing = false;
    RB_CUDA_CHECK(ctx, cudaStreamEndCapture(ctx->stream, &ctx->graph));
    RB_CUDA_CHECK(ctx, cudaGraphInstantiate(&ctx->graph_exec, ctx->graph, 0));
    return RB_OK;
}

static int api_graph_launch(rb_cuda_ctx *ctx)
{
    if (!ctx->graph_exec)
        return set_error(ctx, RB_ERR_INVALID, "graph_launch: no captured graph");
    RB_CUDA_CHECK(ctx, cudaGraphLaunch(ctx->graph_exec, ctx->stream));
    return RB_OK;
}

static const rb_cuda_api api_table = {
    RB_CUDA_ABI_VERSION, api_device_count, api_device_info, api_ctx_create, api_ctx_free,
    api_last_error,      api_alloc,        api_free,        api_upload,     api_download,
    api_synchronize,     api_matvec,       api_gemm,        api_get_rows,   api_rmsnorm,
    api_layernorm,       api_rope,         api_softmax,     api_swiglu,     api_gelu,
    api_add,             api_add_bias,     api_kv_store,    api_attention,  api_graph_begin,
    api_graph_end,       api_graph_launch,
};

extern "C" __attribute__((visibility("default"))) const rb_cuda_api *rb_cuda_api_get(void)
{
    return &api_table;
}
