#ifndef PAREDAO_CMONGOC_SHIM_H
#define PAREDAO_CMONGOC_SHIM_H

#include <mongoc.h>

/* bson_t is aligned(128), so Swift sees only `bson_t *` as an opaque pointer and cannot
 * give the driver the stack storage it expects for "out" documents (replies). These make
 * that storage on the heap: an initialised, empty document the driver may overwrite. */
static inline bson_t *paredao_bson_reply_new(void) {
    bson_t *reply = (bson_t *) bson_aligned_alloc0(128, sizeof(bson_t));
    bson_init(reply);
    return reply;
}

/* Frees a document made by paredao_bson_reply_new (its buffer, then the struct itself:
 * bson_init marks it static, so bson_destroy alone does not free the struct). */
static inline void paredao_bson_reply_free(bson_t *reply) {
    bson_destroy(reply);
    bson_free(reply);
}

/* bson_iter_t holds a bson_value_t union; a heap iterator keeps Swift away from its layout. */
static inline bson_iter_t *paredao_bson_iter_new(void) {
    return (bson_iter_t *) bson_aligned_alloc0(16, sizeof(bson_iter_t));
}

static inline void paredao_bson_iter_free(bson_iter_t *iter) {
    bson_free(iter);
}

#endif
