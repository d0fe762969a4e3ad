/* regex_bound: what a POSIX extended regular expression from a spec costs to
 * compile, bounded before regcomp sees it. glibc's regcomp copies the tree of
 * an element for each repetition it expands ("a+" is "aa*", "a{n}" n copies),
 * so stacked or nested repetitions grow it exponentially: "F" followed by 57
 * "+" took the fuzzer minutes and 3 GB inside regcomp. */
#ifndef DEVSYS_REGEX_BOUND_H
#define DEVSYS_REGEX_BOUND_H

#include <stddef.h>

/* The most tree nodes a pattern may expand to (a{100} inside (...){100} is
 * about 10,000 already; no log or body pattern needs more). */
#define REGEX_NODES_MAX 10000

/* An upper estimate of the nodes regcomp builds for pattern p (ERE syntax),
 * saturated at cap + 1. */
size_t regex_nodes(const char *p, size_t cap);

/* Compiles p as an ERE only when its estimate is within REGEX_NODES_MAX:
 * 0, or -1 with the reason in why ("repeats too much ..." or regerror's). */
int regex_check_ere(const char *p, char *why, size_t whylen);

#endif
