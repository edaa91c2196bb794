import { Type, type Static } from '@sinclair/typebox';

/** A care action recorded by staff (issue 4 workflow); it becomes a `care_action` RuleInput. */
export const CARE_ACTIONS = ['turned', 'changed', 'checked', 'called_doctor'] as const;

export const CareActionRequest = Type.Object(
  {
    action: Type.Union(CARE_ACTIONS.map((a) => Type.Literal(a))),
    /** Staff-recorded NEWS2 observations: supplemental oxygen and ACVPU consciousness. */
    observation: Type.Optional(
      Type.Object(
        {
          onOxygen: Type.Optional(Type.Boolean()),
          consciousness: Type.Optional(Type.Union([Type.Literal('A'), Type.Literal('C'), Type.Literal('V'), Type.Literal('P'), Type.Literal('U')])),
        },
        { additionalProperties: false },
      ),
    ),
    comment: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);
export type CareActionRequest = Static<typeof CareActionRequest>;

export interface CareActionInput {
  readonly residentId: string;
  readonly homeId: string;
  readonly action: CareActionRequest['action'];
  readonly by: string;
  readonly ts: number;
  readonly observation?: { readonly onOxygen?: boolean; readonly consciousness?: 'A' | 'C' | 'V' | 'P' | 'U' };
  readonly comment?: string;
}
