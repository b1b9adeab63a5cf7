/*
 * script.c: the Lua 5.4 sandbox of the script hook (script.h).
 *
 * Why a state per thread and per program: creating a state and loading the
 * script costs tens of microseconds, calling a function a few; the state is
 * built once and reused until the program changes or a call fails (after a
 * failure the state may hold half-built globals, so it is thrown away).
 */
#include "script.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Points a script may say a basket earns or burns at most. */
#define SCRIPT_POINTS_MAX 1000000000000LL

typedef struct script_mem {
    size_t used;
    size_t limit;
} script_mem;

struct kp_script_cache {
    lua_State *L;
    script_mem mem;
    uint64_t key; /* what the state was built for: script_key() */
    int64_t instructions_max;
};

/* Identifies a program's script: its version and an FNV-1a hash of the
 * source and limits, so a program changed in place (tests, a reload under
 * the same version) never runs a stale state. */
static uint64_t script_key(const kp_program *p)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *c = p->script; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ULL;
    h ^= (uint64_t)p->version * 0x9e3779b97f4a7c15ULL;
    h ^= (uint64_t)p->script_memory_max_bytes << 20;
    h ^= (uint64_t)p->script_instructions_max;
    return h;
}

/* lua_Alloc with a cap: past it an allocation fails, which Lua turns into
 * a "not enough memory" error of the running call. */
static void *script_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    script_mem *m = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        m->used -= old;
        return NULL;
    }
    if (nsize > old && m->used + (nsize - old) > m->limit) return NULL;
    void *p = realloc(ptr, nsize);
    if (p) m->used = m->used - old + nsize;
    return p;
}

/* Past the budget every further instruction fails too, so a script cannot
 * catch the error with pcall and go on: the error reaches the top. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "the script ran over its instruction budget");
}

void kp_script_cache_free(kp_script_cache *c)
{
    if (c == NULL) return;
    if (c->L) lua_close(c->L);
    free(c);
}

/* Opens the allowed libraries and removes what could reach outside. A
 * lua_CFunction, run under lua_pcall. */
static int sandbox_open(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},        {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},  {NULL, NULL}};
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    static const char *const banned[] = {"dofile", "loadfile",       "load", "require",
                                         "print",  "collectgarbage", NULL};
    for (size_t i = 0; banned[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, banned[i]);
    }
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    /* math.random is seeded from the clock: scripts must be deterministic. */
    lua_getglobal(L, LUA_MATHLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "random");
    lua_pushnil(L);
    lua_setfield(L, -2, "randomseed");
    lua_pop(L, 1);
    return 0;
}

/* Builds a state with the program's script loaded and run; *error names
 * what failed. */
static kp_script_cache *cache_build(const kp_program *p, char *error, size_t error_size)
{
    kp_script_cache *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    c->mem.limit = (size_t)p->script_memory_max_bytes;
    c->key = script_key(p);
    c->instructions_max = p->script_instructions_max;
    c->L = lua_newstate(script_alloc, &c->mem);
    if (c->L == NULL) {
        snprintf(error, error_size, "the script's memory cap is too small to start");
        free(c);
        return NULL;
    }
    /* Everything that may allocate runs protected: an allocation past the
     * cap outside a protected call would end the process (Lua's panic). */
    lua_pushcfunction(c->L, sandbox_open);
    int rc = lua_pcall(c->L, 0, 0, 0);
    lua_sethook(c->L, budget_hook, LUA_MASKCOUNT, (int)c->instructions_max);
    if (rc == LUA_OK) rc = luaL_loadbufferx(c->L, p->script, strlen(p->script), "=script", "t");
    if (rc == LUA_OK) rc = lua_pcall(c->L, 0, 0, 0);
    if (rc != LUA_OK) {
        snprintf(error, error_size, "%s",
                 lua_tostring(c->L, -1) ? lua_tostring(c->L, -1) : "error");
        kp_script_cache_free(c);
        return NULL;
    }
    lua_sethook(c->L, NULL, 0, 0);
    return c;
}

kp_err kp_script_check(const kp_program *p, kp_error *e)
{
    if (p->script_earn[0] == '\0' && p->script_burn[0] == '\0') return KP_OK;
    char error[200];
    kp_script_cache *c = cache_build(p, error, sizeof error);
    if (c == NULL) return kp_error_set(e, KP_ERR_INVALID, "script.source", "%s", error);
    const char *fns[2] = {p->script_earn, p->script_burn};
    const char *fields[2] = {"script.earn", "script.burn"};
    kp_err err = KP_OK;
    for (int i = 0; i < 2 && err == KP_OK; i++) {
        if (fns[i][0] == '\0') continue;
        int type = lua_getglobal(c->L, fns[i]);
        lua_pop(c->L, 1);
        if (type != LUA_TFUNCTION)
            err = kp_error_set(e, KP_ERR_INVALID, fields[i],
                               "the script defines no function named %s", fns[i]);
    }
    kp_script_cache_free(c);
    return err;
}

static void set_int(lua_State *L, const char *key, int64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, key);
}

static void set_str(lua_State *L, const char *key, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, key);
}

/* The table a script function gets: the basket as priced, the account. */
static void push_context(lua_State *L, const kp_account *a, const kp_basket *b, const kp_quote *q,
                         kp_time at)
{
    lua_createtable(L, 0, 12);
    set_int(L, "at", at);
    set_int(L, "amount", q->amount_minor);
    set_int(L, "discount", q->discount_minor);
    set_int(L, "paid", q->paid_minor);
    set_int(L, "paid_with_points", q->points_minor);
    set_int(L, "burn_requested", q->burn_request);
    set_int(L, "burned", q->burned);
    set_int(L, "earned", q->earned);
    lua_createtable(L, 0, 6);
    set_int(L, "balance", a->balance);
    set_int(L, "purchases", a->purchases);
    set_int(L, "spend", a->spend_minor);
    set_int(L, "year_spend", a->year_spend_minor);
    set_str(L, "tier", a->tier);
    lua_pushboolean(L, a->registered);
    lua_setfield(L, -2, "registered");
    lua_setfield(L, -2, "account");
    lua_createtable(L, (int)b->n_lines, 0);
    for (size_t i = 0; i < b->n_lines; i++) {
        const kp_line *l = &b->lines[i];
        const kp_line_result *r = &q->lines[i];
        lua_createtable(L, 0, 9);
        set_str(L, "sku", l->sku);
        set_str(L, "category", l->category);
        set_int(L, "amount", l->amount_minor);
        set_int(L, "qty", l->qty);
        lua_pushboolean(L, l->promo);
        lua_setfield(L, -2, "promo");
        set_int(L, "discount", r->discount_minor);
        set_int(L, "paid_with_points", r->points_minor);
        set_int(L, "paid", r->paid_minor);
        set_int(L, "earned", r->earned);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "lines");
}

typedef struct call_args {
    const char *fn;
    const kp_account *account;
    const kp_basket *basket;
    const kp_quote *quote;
    kp_time at;
} call_args;

/* Runs under lua_pcall: fn(context) -> points [, note]. Building the
 * context allocates, so it is protected too. */
static int protected_call(lua_State *L)
{
    const call_args *args = lua_touserdata(L, 1);
    lua_settop(L, 0);
    if (lua_getglobal(L, args->fn) != LUA_TFUNCTION)
        return luaL_error(L, "the script defines no function named %s", args->fn);
    push_context(L, args->account, args->basket, args->quote, args->at);
    lua_call(L, 1, 2);
    return 2;
}

/* Calls fn(ctx) -> points [, note]. */
static kp_err call(kp_script_cache **cache, const kp_program *p, const char *fn,
                   const kp_account *a, const kp_basket *b, const kp_quote *q, kp_time at,
                   int64_t *result, char *note, size_t note_size)
{
    kp_script_cache *c = *cache;
    if (c && c->key != script_key(p)) {
        kp_script_cache_free(c);
        *cache = c = NULL;
    }
    char error[200] = "";
    if (c == NULL) {
        c = cache_build(p, error, sizeof error);
        if (c == NULL) {
            snprintf(note, note_size, "script failed (%s); the rules' result is kept", error);
            return KP_ERR_INVALID;
        }
        *cache = c;
    }
    lua_State *L = c->L;
    int base = lua_gettop(L);
    kp_err err = KP_OK;
    call_args args = {fn, a, b, q, at};
    lua_pushcfunction(L, protected_call);
    lua_pushlightuserdata(L, &args);
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, (int)c->instructions_max);
    int rc = lua_pcall(L, 1, 2, 0);
    lua_sethook(L, NULL, 0, 0);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        snprintf(error, sizeof error, "%s", msg ? msg : "error");
        err = KP_ERR_INVALID;
        goto out;
    }
    int is_int = 0;
    lua_Integer v = lua_tointegerx(L, -2, &is_int);
    if (!is_int || v < 0 || v > SCRIPT_POINTS_MAX) {
        snprintf(error, sizeof error, "%s must return a whole number of points from 0 to %lld", fn,
                 (long long)SCRIPT_POINTS_MAX);
        err = KP_ERR_INVALID;
        goto out;
    }
    *result = (int64_t)v;
    if (lua_type(L, -1) == LUA_TSTRING)
        snprintf(note, note_size, "script %s: %s", fn, lua_tostring(L, -1));
    else
        snprintf(note, note_size, "script %s: %lld points", fn, (long long)v);
out:
    if (err) {
        snprintf(note, note_size, "script %s failed (%s); the rules' result is kept", fn, error);
        kp_script_cache_free(c);
        *cache = NULL;
        return err;
    }
    lua_settop(L, base);
    return KP_OK;
}

kp_err kp_script_earn(kp_script_cache **cache, const kp_program *program, const kp_account *account,
                      const kp_basket *basket, const kp_quote *quote, kp_time at, int64_t *earned,
                      char *note, size_t note_size)
{
    return call(cache, program, program->script_earn, account, basket, quote, at, earned, note,
                note_size);
}

kp_err kp_script_burn(kp_script_cache **cache, const kp_program *program, const kp_account *account,
                      const kp_basket *basket, const kp_quote *quote, kp_time at, int64_t *max_burn,
                      char *note, size_t note_size)
{
    return call(cache, program, program->script_burn, account, basket, quote, at, max_burn, note,
                note_size);
}
