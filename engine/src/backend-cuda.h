/* Engine-private access to the dlopen'ed CUDA backend (see backend-cuda.c). */
#ifndef RAGBOX_ENGINE_BACKEND_CUDA_H
#define RAGBOX_ENGINE_BACKEND_CUDA_H

#include "cuda-api.h"
#include "ragbox/engine.h"

/* The loaded backend table, or NULL (with *reason saying why: not built, no driver,
 * no device ...). *n_devices is the number of usable devices. Loads once. */
const struct rb_cuda_api *rb__cuda_backend(int *n_devices, const char **reason);

#endif
