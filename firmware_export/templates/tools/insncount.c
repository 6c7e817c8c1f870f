/* From shared/embedded/example/tools (the team's verified recipe), plus mark=ADDR:
 * every execution of that address (a per-layer marker) records the running count,
 * printed as "marks=N1,N2,..." (instructions from the begin marker, cumulative). */
/* Minimal QEMU TCG plugin: counts executed guest instructions, in total and
 * between two marker addresses (e.g. the entries of bench_begin() and
 * bench_end()). Repeatable: the same binary and input give the same count.
 *
 * Debian 12's QEMU (7.2) is built with plugin support (-plugin) but ships no
 * plugins and no qemu-plugin.h, so the few declarations of the plugin API
 * (version 1) that this file uses are written out below.
 *
 * Build: gcc -shared -fPIC -O2 -o libinsncount.so insncount.c
 * Run:   qemu-system-arm ... -plugin ./libinsncount.so,begin=0x219,end=0x225 \
 *            -d plugin -D insns.txt
 *        qemu-aarch64 -plugin ./libinsncount.so,begin=..,end=.. \
 *            -d plugin -D insns.txt ./prog args
 * Prints one line: "insns total=N between=M" (M = instructions from the
 * begin marker to the end marker, summed over all begin/end pairs).
 * Addresses may carry the Thumb bit; it is ignored. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the subset of QEMU's plugin API (version 1) used here ---- */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb,
                                              enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags,
                                            void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
                                                 size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb_t cb,
                                    void *userdata);
void qemu_plugin_outs(const char *string);

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 1;
EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                               const struct qemu_info_t *info,
                               int argc, char **argv);

/* ---- the plugin ---- */
static uint64_t total;      /* bumped inline at the start of every block */
static uint64_t between;    /* accumulated begin..end counts */
static uint64_t mark;       /* total at the last begin marker */
static int inside;
static uint64_t begin_addr = UINT64_MAX, end_addr = UINT64_MAX, mark_addr = UINT64_MAX;
static uint64_t *marks;
static size_t n_marks, cap_marks;

static void on_mark(unsigned int vcpu, void *u)
{
    (void)vcpu; (void)u;
    if (!inside) {
        return;
    }
    if (n_marks == cap_marks) {
        uint64_t *grown;
        cap_marks = cap_marks ? 2 * cap_marks : 256;
        grown = realloc(marks, cap_marks * sizeof *marks);
        if (grown == NULL) {
            abort();
        }
        marks = grown;
    }
    marks[n_marks++] = total - mark;
}

static void on_begin(unsigned int vcpu, void *u)
{
    (void)vcpu; (void)u;
    mark = total;
    inside = 1;
}

static void on_end(unsigned int vcpu, void *u)
{
    (void)vcpu; (void)u;
    if (inside) {
        between += total - mark;
        inside = 0;
    }
}

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t i, n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                             &total, n);
    for (i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn) & ~(uint64_t)1;
        if (pc == begin_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin,
                                                   QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (pc == mark_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark,
                                                   QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (pc == end_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end,
                                                   QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void on_atexit(qemu_plugin_id_t id, void *u)
{
    char line[96];
    size_t i;
    (void)id; (void)u;
    snprintf(line, sizeof line, "insns total=%llu between=%llu%s",
             (unsigned long long)total, (unsigned long long)between,
             n_marks ? " marks=" : "\n");
    qemu_plugin_outs(line);
    for (i = 0; i < n_marks; ++i) {
        snprintf(line, sizeof line, "%llu%s", (unsigned long long)marks[i],
                 i + 1 < n_marks ? "," : "\n");
        qemu_plugin_outs(line);
    }
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                               const struct qemu_info_t *info,
                               int argc, char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "begin=", 6) == 0) {
            begin_addr = strtoull(argv[i] + 6, NULL, 0) & ~(uint64_t)1;
        } else if (strncmp(argv[i], "mark=", 5) == 0) {
            mark_addr = strtoull(argv[i] + 5, NULL, 0) & ~(uint64_t)1;
        } else if (strncmp(argv[i], "end=", 4) == 0) {
            end_addr = strtoull(argv[i] + 4, NULL, 0) & ~(uint64_t)1;
        } else {
            fprintf(stderr, "insncount: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
    qemu_plugin_register_atexit_cb(id, on_atexit, NULL);
    return 0;
}
