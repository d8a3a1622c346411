import { objectArg, stringArg, type BuiltinTable } from './builtin.js';
import { executeTemplate } from './go-template-exec.js';
import { parseTemplate } from './go-template-parse.js';

/**
 * strings.render_template, after OPA's topdown/template.go: Go's text/template (OPA's method-less copy) over
 * the variables, "<no value>" written as "<undefined>". The subset of text/template implemented and what is
 * refused are in go-template-parse.ts; a template using the rest fails the evaluation (fail closed).
 */
export const templateBuiltins: BuiltinTable = {
  'strings.render_template': (a) => {
    const template = stringArg(a, 0);
    const vars = objectArg(a, 1);
    return executeTemplate(parseTemplate(template), vars).replaceAll('<no value>', '<undefined>');
  },
};
