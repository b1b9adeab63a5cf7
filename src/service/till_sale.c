/*
 * till_sale.c: a till's purchase without a card (POST /v1/purchases with
 * neither `card` nor `phone`): an anonymous sale, recorded in the sales
 * history (kopilka/sales.h, source "till") and touching no account. It is
 * a writer job like any purchase, so the operation log is its durable
 * record and replay after a crash runs this code again (same request,
 * same time, same answer). Idempotent by (store, receipt) as a purchase
 * is: the same body again answers the first answer with "replayed": true;
 * another body is 409 receipt_conflict, and so is a receipt an operation
 * with a card used (and, the other way round, kp_service_purchase refuses
 * a card purchase under an anonymous sale's receipt).
 */
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>
#include <kopilka/sales.h>

#include "core/buf.h"

/* The answer: {"anonymous": true, "store", "receipt", "at", "amount",
 * "lines": [{"sku", "category", "amount", "qty"}]}, from what is stored. */
static void sale_json(kp_buf *out, const kp_sale *x, bool replayed)
{
    char ts[32];
    kp_time_format(x->at, ts, sizeof ts);
    kp_buf_reset(out);
    kp_buf_puts(out, replayed ? "{\"replayed\":true,\"anonymous\":true" : "{\"anonymous\":true");
    kp_buf_json_kv_str(out, "store", x->store, true);
    kp_buf_json_kv_str(out, "receipt", x->receipt, true);
    kp_buf_json_kv_str(out, "at", ts, true);
    kp_buf_json_kv_i64(out, "amount", x->amount, true);
    kp_buf_puts(out, ",\"lines\":[");
    for (size_t i = 0; i < x->n_lines; i++) {
        const kp_sale_line *l = &x->lines[i];
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "sku", l->sku, false);
        kp_buf_json_kv_str(out, "category", l->category, true);
        kp_buf_json_kv_i64(out, "amount", l->amount, true);
        kp_buf_json_kv_i64(out, "qty", l->qty, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]}");
}

/* The same request as the stored sale: the same lines, and the same time
 * when the till gave one (without it, the first request's time stands). */
static bool same_sale(const kp_sale *stored, const kp_sale *asked, bool at_given)
{
    if (stored->n_lines != asked->n_lines || (at_given && stored->at != asked->at)) return false;
    for (size_t i = 0; i < asked->n_lines; i++) {
        const kp_sale_line *a = &stored->lines[i], *b = &asked->lines[i];
        if (strcmp(a->sku, b->sku) != 0 || strcmp(a->category, b->category) != 0 ||
            a->amount != b->amount || a->qty != b->qty)
            return false;
    }
    return true;
}

static kp_err conflict(const char *store, const char *receipt, kp_error *e)
{
    return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_RECEIPT_CONFLICT, "receipt",
                         "receipt %s of store %s was already used for a different request",
                         receipt, store);
}

static kp_err storage(kp_store *st, kp_err err, kp_error *e)
{
    return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
}

kp_err kp_service_sale_anonymous(kp_store *st, const kp_program *program, const char *store,
                                 const kp_purchase_req *req, kp_time now, kp_buf *out,
                                 bool *replayed, kp_error *e)
{
    *replayed = false;
    const kp_sales_ops *so = st->ops->sales;
    if (so == NULL) return kp_error_set(e, KP_ERR_INTERNAL, "", "this store keeps no sales");
    kp_sale_line *lines = malloc(2 * KP_SALE_LINES_MAX * sizeof *lines);
    if (lines == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_sale x;
    memset(&x, 0, sizeof x);
    x.at = req->at_given ? req->at : now;
    snprintf(x.store, sizeof x.store, "%s", store);
    snprintf(x.receipt, sizeof x.receipt, "%s", req->receipt);
    x.kind = KP_SALE_PURCHASE;
    x.source = KP_SALE_TILL;
    x.n_lines = req->basket.n_lines;
    x.lines = lines;
    for (size_t i = 0; i < x.n_lines; i++) {
        const kp_line *l = &req->basket.lines[i];
        snprintf(lines[i].sku, sizeof lines[i].sku, "%s", l->sku);
        snprintf(lines[i].category, sizeof lines[i].category, "%s", l->category);
        lines[i].amount = l->amount_minor;
        lines[i].qty = l->qty;
        x.amount += l->amount_minor;
    }
    kp_sale stored;
    kp_op_row op;
    kp_err err = so->sale_get(st, store, req->receipt, KP_SALE_PURCHASE, &stored,
                              lines + KP_SALE_LINES_MAX);
    if (err == KP_OK) {
        /* A retry gets its first answer, even past the clock's bounds. */
        if (same_sale(&stored, &x, req->at_given)) {
            *replayed = true;
            sale_json(out, &stored, true);
        } else {
            err = conflict(store, req->receipt, e);
        }
    } else if (err != KP_ERR_NOT_FOUND) {
        err = storage(st, err, e);
    } else if ((err = st->ops->op_find(st, store, req->receipt, &op)) == KP_OK) {
        /* One receipt is one sale: an operation with a card took it. */
        err = kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_RECEIPT_CONFLICT, "receipt",
                            "receipt %s of store %s is already %s with a card (operation %lld): "
                            "a sale without a card cannot use it; send this sale under a "
                            "receipt of its own",
                            req->receipt, store,
                            op.type == KP_OP_RETURN ? "a return" : "a purchase", (long long)op.id);
        kp_op_row_release(&op);
    } else if (err != KP_ERR_NOT_FOUND) {
        err = storage(st, err, e);
    } else if (req->log_format1 ||
               (err = kp_till_check_at(program, req->at_given, req->at, req->offline, now, e)) ==
                   KP_OK) {
        int64_t inserted = 0, skipped = 0;
        err = so->sales_put(st, &x, 1, &inserted, &skipped);
        if (err == KP_OK && inserted != 1) err = KP_ERR_BUSY; /* written meanwhile: run again */
        if (err) err = err == KP_ERR_BUSY ? kp_error_set(e, err, "", "retry") : storage(st, err, e);
        else sale_json(out, &x, false);
    }
    if (err == KP_OK && out->failed) err = kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");
    free(lines);
    return err;
}
