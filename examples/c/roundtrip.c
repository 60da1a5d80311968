/* arca from C: compress a file with the embedded model through the streaming encoder, decode
 * it back through the streaming decoder, check the bytes, then show that a damaged stream is
 * refused with an error code and hands over nothing.
 *
 *   cc -Wall -Werror -std=c11 -I runtime/capi/include examples/c/roundtrip.c \
 *      target/release/libarca.a -lpthread -ldl -lm -o roundtrip
 *   ./roundtrip tests/data/canterbury/grammar.lsp grammar.lsp.arca
 *
 * Exit status 0 when everything held, 1 otherwise (with a message on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca.h"

/* A growing byte buffer, the context of the write callbacks below. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} buffer;

static int append(void *ctx, const uint8_t *data, size_t len) {
    buffer *b = ctx;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) return 1; /* arca stops with ARCA_STATUS_WRITE */
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static int read_file(const char *path, buffer *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return 1;
    uint8_t chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) rc |= append(out, chunk, n);
    rc |= ferror(f);
    fclose(f);
    return rc;
}

static int fail(const char *what, arca_status status) {
    fprintf(stderr, "roundtrip: %s: status %d: %s\n", what, (int)status, arca_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT OUTPUT.arca\n", argv[0]);
        return 2;
    }
    buffer input = {0}, packed = {0}, back = {0};
    if (read_file(argv[1], &input)) {
        fprintf(stderr, "roundtrip: cannot read %s\n", argv[1]);
        return 1;
    }

    arca_model *model = NULL;
    arca_status s = arca_model_open(NULL, &model); /* NULL: the embedded default model */
    if (s != ARCA_STATUS_OK) return fail("open the default model", s);

    /* Compress: the input in 1000-byte pieces, as a program writing a log would. */
    arca_encoder *enc = NULL;
    if ((s = arca_encoder_new(model, append, &packed, &enc)) != ARCA_STATUS_OK) return fail("encoder", s);
    for (size_t at = 0; at < input.len; at += 1000) {
        size_t n = input.len - at < 1000 ? input.len - at : 1000;
        if ((s = arca_encoder_write(enc, input.data + at, n)) != ARCA_STATUS_OK) return fail("encode", s);
    }
    if ((s = arca_encoder_finish(enc)) != ARCA_STATUS_OK) return fail("finish", s);
    arca_encoder_free(enc);
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(packed.data, 1, packed.len, f) != packed.len || fclose(f)) {
        fprintf(stderr, "roundtrip: cannot write %s\n", argv[2]);
        return 1;
    }

    /* Decompress: the stream fed 777 bytes at a time. */
    arca_decoder *dec = NULL;
    if ((s = arca_decoder_new(model, append, &back, &dec)) != ARCA_STATUS_OK) return fail("decoder", s);
    for (size_t at = 0; at < packed.len; at += 777) {
        size_t n = packed.len - at < 777 ? packed.len - at : 777;
        if ((s = arca_decoder_write(dec, packed.data + at, n)) != ARCA_STATUS_OK) return fail("decode", s);
    }
    if ((s = arca_decoder_finish(dec)) != ARCA_STATUS_OK) return fail("end of stream", s);
    arca_decoder_free(dec);
    if (back.len != input.len || (input.len && memcmp(back.data, input.data, input.len))) {
        fprintf(stderr, "roundtrip: the decoded bytes differ from the input\n");
        return 1;
    }
    printf("%s: %zu -> %zu bytes (%.3f bits/byte), decoded back identical\n", argv[1], input.len,
           packed.len, input.len ? 8.0 * (double)packed.len / (double)input.len : 0.0);

    /* A damaged stream: one flipped bit in the middle of the coded data. */
    packed.data[packed.len / 2 + 60] ^= 0x10;
    uint8_t *out = (uint8_t *)1;
    size_t out_len = 0;
    s = arca_decompress(model, packed.data, packed.len, &out, &out_len);
    if (s != ARCA_STATUS_CORRUPT || out != NULL) {
        fprintf(stderr, "roundtrip: a damaged stream was not refused (status %d)\n", (int)s);
        return 1;
    }
    printf("damaged stream refused: status %d (%s), nothing returned\n", (int)s, arca_last_error());
    buffer none = {0};
    if ((s = arca_decoder_new(model, append, &none, &dec)) != ARCA_STATUS_OK) return fail("decoder", s);
    s = arca_decoder_write(dec, packed.data, packed.len);
    arca_decoder_free(dec);
    if (s != ARCA_STATUS_CORRUPT || none.len != 0) {
        fprintf(stderr, "roundtrip: the streaming decoder handed over damaged data\n");
        return 1;
    }

    /* The one-shot calls agree with the streaming ones. */
    packed.data[packed.len / 2 + 60] ^= 0x10;
    if ((s = arca_decompress(model, packed.data, packed.len, &out, &out_len)) != ARCA_STATUS_OK) return fail("decompress", s);
    int same = out_len == input.len && (input.len == 0 || !memcmp(out, input.data, input.len));
    arca_buffer_free(out, out_len);
    arca_model_free(model);
    free(input.data);
    free(packed.data);
    free(back.data);
    free(none.data);
    if (!same) {
        fprintf(stderr, "roundtrip: arca_decompress gave other bytes\n");
        return 1;
    }
    printf("arca %s: all checks passed\n", arca_version());
    return 0;
}
