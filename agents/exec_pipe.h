/* exec_pipe: reading a task's output and checkpoint pipes, bounded: the last
 * OUTPUT_TAIL_MAX bytes of output, checkpoint lines of at most CHECKPOINT_MAX. */
#ifndef DEVSYS_EXEC_PIPE_H
#define DEVSYS_EXEC_PIPE_H

#include <stddef.h>

#include "handler.h"

typedef struct exec_tail {
    char *ring;                  /* OUTPUT_TAIL_MAX (+1 for a NUL) bytes, made on the first read */
    size_t pos;                  /* next write position in the ring */
    unsigned long long total;
    int eof;
} exec_tail_t;

typedef struct exec_cplines {
    char *buf;                   /* the checkpoint line being assembled */
    size_t len, cap;
    int dropping;                /* inside an oversized line: skip to newline */
    int eof;
} exec_cplines_t;

/* Up to max_reads read()s of the non-blocking fd (stops at EAGAIN; sets eof
 * at end of file or on an error). */
void exec_pipe_tail_read(exec_tail_t *o, int fd, int max_reads);
/* Hands the tail over to res->output (NUL-terminated, res owns it). */
void exec_pipe_tail_take(exec_tail_t *o, handler_result_t *res);
void exec_pipe_tail_clear(exec_tail_t *o);

/* Likewise for the checkpoint pipe: each complete JSON line goes to
 * run->checkpoint_save; a line that is not JSON or too long is logged and
 * dropped; at end of file an unterminated last line counts. */
void exec_pipe_cp_read(exec_cplines_t *c, int fd, int max_reads, task_run_t *run);
void exec_pipe_cp_clear(exec_cplines_t *c);

#endif
