import type { KnowledgeBaseFieldsFragment } from '../gql/graphql';

/** "only <the selected knowledge base>": a checkbox, off and disabled while no knowledge base is selected. */
export function OnlySelected({
  knowledgeBase,
  checked,
  onChange,
}: {
  knowledgeBase: KnowledgeBaseFieldsFragment | null;
  checked: boolean;
  onChange: (checked: boolean) => void;
}) {
  return (
    <label title={knowledgeBase ? undefined : 'select a knowledge base first'}>
      <input type="checkbox" checked={checked && !!knowledgeBase} disabled={!knowledgeBase} onChange={(e) => onChange(e.target.checked)} /> only{' '}
      {knowledgeBase ? knowledgeBase.name : 'the selected knowledge base'}
    </label>
  );
}

/** The knowledge base ids a request is limited to: the selected one when limited to it, else null (all). */
export const onlyIds = (only: boolean, knowledgeBase: KnowledgeBaseFieldsFragment | null): string[] | null =>
  only && knowledgeBase ? [knowledgeBase.id] : null;
