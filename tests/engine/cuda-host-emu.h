/* A host emulator of the CUDA backend's device API (cuda-api.h): the same kernel
 * bodies (quant-block.h, ops-block.h) with the same work decomposition, on host
 * memory. Lets the CPU tests run backend-cuda-model.c end to end. Graph capture is
 * reported unsupported, which the backend handles by decoding eagerly. */
#ifndef RAGBOX_TESTS_CUDA_HOST_EMU_H
#define RAGBOX_TESTS_CUDA_HOST_EMU_H
#include "cuda-api.h"
const struct rb_cuda_api *rb_test_cuda_host_api(void);
/* Bytes the emulated device reports free (default 1 GiB). */
void rb_test_cuda_host_set_free(size_t bytes);
#endif
