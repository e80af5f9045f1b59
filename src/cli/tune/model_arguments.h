/* A model's arguments searched by name. A model's text given to tune (the fixed --layers, or a
 * value of a searched layers) may write {name} where a layer takes a value, such as
 * dropout({p}) or conv2d({width},3,padding=1); --space then searches name like any parameter
 * (p=uniform(0.1,0.6)), and each trial's --layers has the drawn value in its place. */
#ifndef NABLA_CLI_TUNE_MODEL_ARGUMENTS_H
#define NABLA_CLI_TUNE_MODEL_ARGUMENTS_H

#include "cli/tune/tune_options.h"

/* Whether a model's text the study can give its trials writes {name}. */
int tune_is_model_argument(const tune_options *o, const char *name);

/* Whether searched parameter p shapes the model a trial trains: a searched layers, or a
 * model's argument. */
int tune_shapes_model(const tune_options *o, const nb_search_param *p);

/* Every {name} in the study's model texts well formed, and a parameter of the space that is
 * neither an option of nabla train nor units or depth. 0, or -1 with the usage error
 * printed. */
int tune_check_model_arguments(const tune_options *o);

/* text with every {name} replaced by the value of name at point p of o's space (as a trial's
 * option takes it: '|' turned into ','); a {name} o does not search stays as written (nabla
 * train then refuses the model). Allocated; NULL when out of memory. */
char *tune_fill_model_arguments(const tune_options *o, const nb_search_point *p,
                                const char *text);

#endif /* NABLA_CLI_TUNE_MODEL_ARGUMENTS_H */
