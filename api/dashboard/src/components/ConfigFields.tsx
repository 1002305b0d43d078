// The inputs of a DCA configuration, labelled, for the bot and backtest forms.
import { CONFIG_FIELDS, isOptional } from "../config";
import { Field } from "./Form";

export function ConfigFields({ values, onChange, skip = [] }: {
  values: Record<string, string>; onChange: (name: string, value: string) => void; skip?: string[];
}) {
  return (
    <>
      {CONFIG_FIELDS.filter(([name]) => !skip.includes(name)).map(([name, label, hint]) => (
        <Field key={name} label={label} name={name} value={values[name]} hint={hint}
               onChange={(e) => onChange(name, e.target.value)}
               inputMode={name === "pair" ? "text" : "decimal"} required={!isOptional(name)} />
      ))}
    </>
  );
}
