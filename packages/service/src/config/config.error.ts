/** One bad setting: the variable's name and what is wrong with it (never its value). */
export interface SettingIssue {
  readonly variable: string;
  readonly message: string;
}

/** Start-up stops with this: its message names every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(readonly issues: readonly SettingIssue[]) {
    super(`invalid configuration: ${issues.map((i) => `${i.variable}: ${i.message}`).join('; ')}`);
  }
}
