/*
 * currency.h: a card's accounts per currency in the service layer
 * (currency.c; docs/coalition.md "Currencies").
 */
#ifndef KOPILKA_SERVICE_CURRENCY_H
#define KOPILKA_SERVICE_CURRENCY_H

#include "service.h"

/* Whether the program accepts receipts in `code`: its own currency or one
 * of its "currencies". */
bool kp_service_currency_accepted(const kp_program *p, const char *code);

/* The currency of a receipt at `store`: `given` (the request's "currency",
 * "" or NULL = not given), else the one the store's pattern fixes
 * (partners' patterns first, then the program's "stores"), else the
 * program's own. out: "" for the program's own currency, else the code.
 * KP_ERR_INVALID on "currency" when the program does not accept it or the
 * store's pattern fixes another. */
kp_err kp_service_receipt_currency(const kp_program *p, const char *store, const char *given,
                                   char out[4], kp_error *e);

/* Replaces *account (the card's own account, loaded, its id and
 * `registered` set) with the card's account of `currency`, with the rule
 * state the program prices by: the tier and individual discount of the
 * card's own account (`rules` when already read, else read here), this
 * year's spend of the currency account. create: made when missing
 * (kp_store_ops.account_currency: a write); else a missing one is an
 * empty account with id 0 (a quote). */
kp_err kp_service_currency_switch(kp_store *st, const kp_program *program, const char *currency,
                                  bool create, kp_time now, kp_time at,
                                  const kp_account_rules *rules, kp_account *account,
                                  kp_error *e);

/* Writes ,"balances":[{currency, balance, available, debt}, ...]: the
 * card's own account `own` (in `own_currency`, the program's) first, then
 * its currency accounts in currency order. */
kp_err kp_service_balances_json(kp_store *st, const char *own_currency, const kp_account *own,
                                kp_time now, kp_buf *out, kp_error *e);

/* Transfers and rewards catalog orders move points of the program's own
 * currency only: a request's "currency" (optional) must be it. `what` says
 * what is refused ("transfers"). KP_ERR_INVALID on "currency" otherwise. */
struct json_t;
kp_err kp_service_own_currency_only(struct json_t *request, const kp_program *p,
                                    const char *what, kp_error *e);

#endif
