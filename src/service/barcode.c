/*
 * barcode.c: a card number as a picture, for the printer and the phone:
 * Code 128 (what every till scanner reads) and QR, as SVG or PNG, drawn by
 * libzint in memory (this libzint writes files only, so the SVG is written
 * here from its vector output and the PNG by libpng from its bitmap).
 */
#include "people.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zint.h>

static bool number_ok(const char *number)
{
    size_t n = strlen(number);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = number[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '-'))
            return false;
    }
    return true;
}

/* The general case of put_fixed2: at most 40 characters. */
static int fixed2_by_printf(char *p, float v)
{
    int n = snprintf(p, 41, "%.2f", (double)v);
    return n < 0 ? 0 : n > 40 ? 40 : n;
}

static struct zint_symbol *symbol_new(kp_barcode_kind kind)
{
    struct zint_symbol *s = ZBarcode_Create();
    if (s == NULL) return NULL;
    if (kind == KP_BARCODE_QR) {
        s->symbology = BARCODE_QRCODE;
        s->option_1 = 2; /* error correction M */
        s->scale = 4;
        s->whitespace_width = 4;
        s->whitespace_height = 4;
        s->show_hrt = 0;
    } else {
        s->symbology = BARCODE_CODE128;
        s->height = 50;
        s->scale = 2;
        s->whitespace_width = 10;
        s->show_hrt = 1;
    }
    s->input_mode = DATA_MODE;
    return s;
}

/* Appends v as "%.2f" would, for the coordinates libzint draws (multiples
 * of a hundredth, well within ±10^9), without printf's general float
 * conversion: a QR code has hundreds of rectangles, and formatting them
 * was an eighth of a batch export's time. Anything else goes to printf. */
static char *put_fixed2(char *p, float v)
{
    double scaled = (double)v * 100.0;
    long long h = (long long)(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
    if ((double)h != scaled || h > 100000000000LL || h < -100000000000LL)
        return p + fixed2_by_printf(p, v);
    if (h < 0) {
        *p++ = '-';
        h = -h;
    }
    char digits[24];
    int n = 0;
    long long whole = h / 100;
    do {
        digits[n++] = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole > 0);
    while (n > 0) *p++ = digits[--n];
    *p++ = '.';
    *p++ = (char)('0' + (h / 10) % 10);
    *p++ = (char)('0' + h % 10);
    return p;
}

static void put_rect(kp_buf *out, float x, float y, float width, float height)
{
    char line[256], *p = line;
    static const char *const parts[] = {"<rect x=\"", "\" y=\"", "\" width=\"", "\" height=\""};
    const float values[] = {x, y, width, height};
    for (size_t i = 0; i < 4; i++) {
        size_t n = strlen(parts[i]);
        memcpy(p, parts[i], n);
        p = put_fixed2(p + n, values[i]);
    }
    memcpy(p, "\"/>\n", 4);
    kp_buf_append(out, line, (size_t)(p + 4 - line));
}

/* Writes the SVG of an encoded symbol from its vector output. */
static kp_err write_svg(struct zint_symbol *s, const char *number, kp_buf *out, kp_error *e)
{
    if (ZBarcode_Buffer_Vector(s, 0) >= ZINT_ERROR || s->vector == NULL)
        return kp_error_set(e, KP_ERR_INVALID, "card", "cannot draw a barcode of this number");
    const struct zint_vector *v = s->vector;
    kp_buf_reset(out);
    kp_buf_printf(out,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.2f %.2f\">\n"
                  "<title>%s</title>\n"
                  "<rect x=\"0\" y=\"0\" width=\"%.2f\" height=\"%.2f\" fill=\"#FFFFFF\"/>\n"
                  "<g fill=\"#000000\">\n",
                  v->width, v->height, v->width, v->height, number, v->width, v->height);
    for (const struct zint_vector_rect *r = v->rectangles; r; r = r->next)
        put_rect(out, r->x, r->y, r->width, r->height);
    for (const struct zint_vector_circle *c = v->circles; c; c = c->next)
        kp_buf_printf(out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\"/>\n", c->x, c->y,
                      c->diameter / 2);
    for (const struct zint_vector_string *t = v->strings; t; t = t->next) {
        const char *anchor = t->halign == 1 ? "start" : t->halign == 2 ? "end" : "middle";
        kp_buf_printf(out,
                      "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\" "
                      "font-family=\"Helvetica, sans-serif\" font-size=\"%.1f\">%s</text>\n",
                      t->x, t->y, anchor, t->fsize, number);
    }
    kp_buf_puts(out, "</g>\n</svg>\n");
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the image is too large") : KP_OK;
}

static void png_write(png_structp png, png_bytep data, png_size_t len)
{
    kp_buf *b = png_get_io_ptr(png);
    kp_buf_append(b, data, len);
}

static void png_flush(png_structp png)
{
    (void)png;
}

/* Encodes zint's RGB bitmap (black on white only) as a 1-bit grey PNG
 * into out, unfiltered: 24 times fewer bytes for zlib than 8-bit RGB with
 * libpng's adaptive filters, which took four fifths of a batch export's
 * time. A pixel is black when its red is below half. False on a libpng
 * failure or out of memory. */
static bool encode_png(const unsigned char *rgb, int width, int height, kp_buf *out)
{
    size_t row_bytes = ((size_t)width + 7) / 8;
    unsigned char *row = malloc(row_bytes);
    if (row == NULL) return false;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row);
        return false;
    }
    png_set_write_fn(png, out, png_write, png_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 1, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_compression_level(png, 1); /* the bits are few; speed over bytes */
    png_write_info(png, info);
    size_t rgb_row = (size_t)width * 3;
    for (int y = 0; y < height; y++) {
        const unsigned char *px = rgb + (size_t)y * rgb_row;
        /* Barcodes repeat rows: pack a row only when it differs. */
        if (y == 0 || memcmp(px, px - rgb_row, rgb_row) != 0) {
            memset(row, 0, row_bytes);
            for (int x = 0; x < width; x++)
                if (px[(size_t)x * 3] >= 128) row[x >> 3] |= (unsigned char)(0x80u >> (x & 7));
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    return true;
}

/* Writes the PNG of an encoded symbol from its bitmap. */
static kp_err write_png(struct zint_symbol *s, kp_buf *out, kp_error *e)
{
    if (ZBarcode_Buffer(s, 0) >= ZINT_ERROR || s->bitmap == NULL)
        return kp_error_set(e, KP_ERR_INVALID, "card", "cannot draw a barcode of this number");
    kp_buf_reset(out);
    if (!encode_png(s->bitmap, s->bitmap_width, s->bitmap_height, out) || out->failed)
        return kp_error_set(e, KP_ERR_NOMEM, "", "the image could not be encoded");
    return KP_OK;
}

kp_err kp_barcode_pictures(kp_barcode_kind kind, const char *number, kp_buf *svg, kp_buf *png,
                           kp_error *e)
{
    if (!number_ok(number)) return kp_error_set(e, KP_ERR_INVALID, "card", "not a card number");
    struct zint_symbol *s = symbol_new(kind);
    if (s == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = KP_OK;
    if (ZBarcode_Encode(s, (const unsigned char *)number, (int)strlen(number)) >= ZINT_ERROR)
        err = kp_error_set(e, KP_ERR_INVALID, "card", "cannot draw a barcode of this number");
    if (err == KP_OK && svg) err = write_svg(s, number, svg, e);
    if (err == KP_OK && png) err = write_png(s, png, e);
    ZBarcode_Delete(s);
    return err;
}

kp_err kp_barcode_svg(kp_barcode_kind kind, const char *number, kp_buf *out, kp_error *e)
{
    return kp_barcode_pictures(kind, number, out, NULL, e);
}

kp_err kp_barcode_png(kp_barcode_kind kind, const char *number, kp_buf *out, kp_error *e)
{
    return kp_barcode_pictures(kind, number, NULL, out, e);
}
