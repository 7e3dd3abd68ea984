import { LisaError } from '../errors.ts';

/** An AdamW hyperparameter or LR schedule outside its domain. */
export class OptimConfigError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('OPTIM_CONFIG_INVALID', message, details);
  }
}

/** Gradients that do not match the parameter groups (missing, unknown, wrong shape). */
export class GradientMismatchError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('OPTIM_GRAD_MISMATCH', message, details);
  }
}

/** A NaN or infinite gradient; raised before any parameter or moment is touched. */
export class NonFiniteGradientError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('OPTIM_NONFINITE_GRAD', message, details);
  }
}

/** Restored optimizer state that does not fit the parameters it is restored onto. */
export class OptimStateError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('OPTIM_STATE_INVALID', message, details);
  }
}
