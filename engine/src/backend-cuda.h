/* Engine-private access to the dlopen'ed CUDA backend (see backend-cuda.c). */
#ifndef RAGBOX_ENGINE_BACKEND_CUDA_H
#define RAGBOX_ENGINE_BACKEND_CUDA_H

#include "cuda-api.h"
#include "ragbox/engine.h"

/* The loaded backend table, or NULL (with *reason saying why: not built, no driver,
 * no device ...). *n_devices is the number of usable devices. Loads once. */
const struct rb_cuda_api *rb__cuda_backend(int *n_devices, const char **reason);

/* Replaces the loaded table (tests: the host emulator in tests/engine/cuda-host-emu.c
 * runs the device API's kernel bodies on the CPU so the GPU backend's orchestration is
 * verified without a GPU). Call before opening models. */
void rb__cuda_backend_set(const struct rb_cuda_api *api, int n_devices);

#endif
