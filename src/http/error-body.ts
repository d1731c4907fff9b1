/** The one shape of every error response. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  requestId: string;
  /** Validation failures: the offending fields and why, at most MAX_SHOWN_FIELD_ERRORS. */
  errors?: FieldError[];
  /** How many more fields were refused than `errors` lists. */
  moreErrors?: number;
  /** Present when the vendor answered. */
  zegoCode?: number;
  zegoRequestId?: string;
}

export interface FieldError {
  field: string;
  reason: string;
}
