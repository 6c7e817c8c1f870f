/* Example driver: NAME_demo IN OUT
 * Reads raw input tensors from IN (one or more back to back), runs one
 * inference per tensor and writes the raw output tensors to OUT. A file that is
 * not a whole number (at least one) of input tensors is refused.
 * Exit status: 0 on success, 1 on a usage or I/O error, else the status
 * returned by @PREFIX@_invoke. */
#include <stdio.h>
#include <stdlib.h>

#include "@PREFIX@_model.h"
#include "ec_bench.h"

int main(int argc, char **argv)
{
    static @IN_T@ input[@PREFIX_UPPER@_INPUT_SIZE];
    static @OUT_T@ output[@PREFIX_UPPER@_OUTPUT_SIZE];
    FILE *in;
    FILE *out;
    int status = 0;
    size_t got;
    size_t tensors = 0;
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
        return 1;
    }
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        fprintf(stderr, "cannot open %s or %s\n", argv[1], argv[2]);
        return 1;
    }
    /* bytes, not elements: a file of 1-3 stray bytes past a float tensor is refused */
    while ((got = fread(input, 1, sizeof input, in)) == sizeof input) {
        tensors++;
        ec_bench_begin();
        status = @PREFIX@_invoke(input, output);
        ec_bench_end();
        if (status != 0) {
            fprintf(stderr, "%s: input tensor %lu: status %d\n", argv[1],
                    (unsigned long)tensors, status);
            break;
        }
        if (fwrite(output, sizeof output[0], @PREFIX_UPPER@_OUTPUT_SIZE, out) !=
            @PREFIX_UPPER@_OUTPUT_SIZE) {
            status = 1;
            break;
        }
    }
    if (status == 0 && (got != 0 || tensors == 0)) {
        fprintf(stderr, "%s: %lu bytes, not a whole number of %lu-byte input tensors\n",
                argv[1], (unsigned long)(tensors * sizeof input + got),
                (unsigned long)sizeof input);
        status = 1;
    }
    fclose(in);
    if (fclose(out) != 0) {
        status = 1;
    }
    return status;
}
