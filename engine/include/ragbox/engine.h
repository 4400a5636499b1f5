/* ragbox engine: GGUF models, tokenizers, chat templates and inference.
 *
 * Placeholder header: the model-file, tokenizer and chat-template sections are
 * written by engine-gguf; the inference section at the bottom by engine-compute.
 */
#ifndef RAGBOX_ENGINE_H
#define RAGBOX_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ragbox/common.h"

/* ==== inference (engine-compute) ==== */

#endif
