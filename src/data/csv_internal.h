/* Private: the one CSV tokenizer (csv.c) under every CSV reader of the
 * library - the data set reader and syn_csv_header_read, and through them the
 * series reader (src/nn/forecast.c, which also resolves its column's name
 * with syn__csv_find_column) - so quoting, BOM, CRLF, delimiter, blank-line
 * and number rules, and the messages that name file:line, column and field,
 * are the same everywhere. Not exported. */
#ifndef SYN_DATA_CSV_INTERNAL_H
#define SYN_DATA_CSV_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>
#include "synapse/status.h"

/* Records of a CSV stream. Quoting follows RFC 4180 (a quoted field may hold
 * the delimiter, "" and line breaks); CRLF and a UTF-8 BOM are accepted,
 * blank lines between records skipped, unquoted fields trimmed of blanks. */
typedef struct {
    FILE *f;
    const char *path;     /* borrowed: names the file in messages */
    char delim;
    char *line;           /* getline's buffer */
    size_t line_cap;
    char *rec;            /* one record: a line, or several joined inside quotes */
    size_t rec_len, rec_cap;
    long long lineno;     /* physical lines read so far */
    long long rec_line;   /* the line the current record starts on */
    char **fld;           /* fields of the current record, pointing into rec */
    int nf, fld_cap;
} syn__csv;

/* Takes the stream f (NULL: opens path, SYN_ERR_IO if it cannot) and reads
 * it as `path`; delimiter 0 is ','. A quote or line break as the delimiter
 * is SYN_ERR_ARG. f is closed by syn__csv_close, also after a failed open. */
syn_status syn__csv_open(syn__csv *r, FILE *f, const char *path, char delimiter);
void syn__csv_close(syn__csv *r);

/* The next non-blank record split into r->fld[0..nf) (valid until the next
 * call); *eof at the end of the stream. SYN_ERR_FORMAT names file:line for
 * an unterminated quote or text after a closing quote. */
syn_status syn__csv_next(syn__csv *r, bool *eof);

/* The header row as *count strdup'd names (free with syn_csv_header_free);
 * an empty stream is SYN_ERR_FORMAT. */
syn_status syn__csv_header(syn__csv *r, char ***names, int *count);

/* The column named `col`, else the 0-based index it spells (a matching name
 * wins). SYN_ERR_ARG lists the header: "<path>: no <what> '<col>': the header
 * has 'a', 'b', and it is not an index below 2". */
syn_status syn__csv_find_column(const char *path, char *const *names, int count, const char *col,
                                const char *what, int *out);

/* 1 if the whole of s is a number (strtod's syntax), else 0. */
int syn__csv_parse_num(const char *s, double *v);

/* Field k of the current record as a finite float32: SYN_ERR_FORMAT
 * "<path>:<line>: column '<name>' (field k+1): ..." for an empty field, text
 * that is not a number, or a value that is not finite (or overflows float32);
 * `what` ("value", "target") names it there. */
syn_status syn__csv_float(const syn__csv *r, int k, const char *name, const char *what, float *out);

#endif
