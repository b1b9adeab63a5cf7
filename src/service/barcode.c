/*
 * barcode.c: a card number as a picture, for the printer and the phone:
 * Code 128 (what every till scanner reads) and QR, as SVG or PNG, drawn by
 * libzint in memory (this libzint writes files only, so the SVG is written
 * here from its vector output and the PNG by libpng from its bitmap).
 */
#include "people.h"

#include <png.h>
#include <stdio.h>
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

kp_err kp_barcode_svg(kp_barcode_kind kind, const char *number, kp_buf *out, kp_error *e)
{
    if (!number_ok(number)) return kp_error_set(e, KP_ERR_INVALID, "card", "not a card number");
    struct zint_symbol *s = symbol_new(kind);
    if (s == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = KP_OK;
    int rc =
        ZBarcode_Encode_and_Buffer_Vector(s, (const unsigned char *)number, (int)strlen(number), 0);
    if (rc >= ZINT_ERROR || s->vector == NULL) {
        err = kp_error_set(e, KP_ERR_INVALID, "card", "cannot draw a barcode of this number");
        goto out;
    }
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
        kp_buf_printf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n", r->x,
                      r->y, r->width, r->height);
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
    if (out->failed) err = kp_error_set(e, KP_ERR_NOMEM, "", "the image is too large");
out:
    ZBarcode_Delete(s);
    return err;
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

/* Encodes an RGB bitmap as PNG into out. False on a libpng failure. */
static bool encode_png(const unsigned char *rgb, int width, int height, kp_buf *out)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (png == NULL) return false;
    png_infop info = png_create_info_struct(png);
    if (info == NULL || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return false;
    }
    png_set_write_fn(png, out, png_write, png_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, rgb + (size_t)y * (size_t)width * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return true;
}

kp_err kp_barcode_png(kp_barcode_kind kind, const char *number, kp_buf *out, kp_error *e)
{
    if (!number_ok(number)) return kp_error_set(e, KP_ERR_INVALID, "card", "not a card number");
    struct zint_symbol *s = symbol_new(kind);
    if (s == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = KP_OK;
    int rc = ZBarcode_Encode_and_Buffer(s, (const unsigned char *)number, (int)strlen(number), 0);
    if (rc >= ZINT_ERROR || s->bitmap == NULL) {
        err = kp_error_set(e, KP_ERR_INVALID, "card", "cannot draw a barcode of this number");
        goto out;
    }
    kp_buf_reset(out);
    if (!encode_png(s->bitmap, s->bitmap_width, s->bitmap_height, out) || out->failed)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "the image could not be encoded");
out:
    ZBarcode_Delete(s);
    return err;
}
