export type BodyErrorCode =
  | 'invalid_json'
  | 'duplicate_key'
  | 'too_deep'
  | 'invalid_utf8'
  | 'invalid_unicode'
  | 'not_an_object'
  | 'invalid_form'
  | 'invalid_multipart';

/** A request body that cannot be read the one way both the authz server and the executor read it. */
export class BodyError extends Error {
  constructor(
    readonly code: BodyErrorCode,
    message: string,
    /** JSON pointer of the offending object, when there is one. */
    readonly pointer?: string,
  ) {
    super(message);
  }
}
